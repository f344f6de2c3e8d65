"""Build a (pruned) model from its config and checkpoint, outside a Runner.

The counterpart of mmdet's ``init_detector`` / mmpretrain's ``get_model``
for pruned checkpoints: the architecture recorded in the checkpoint shrinks
the freshly built model before the weights are loaded, strictly.
"""
import os.path as osp
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope, init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from prunedet.engine.checkpoints import from_plain, load_file
from prunedet.engine.runner_model import architecture_of, named_file
from prunedet.pruning.architecture import restore_architecture


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               trusted: bool = False) -> nn.Module:
    """The config's model with the checkpoint's architecture and weights,
    in eval mode on ``device``; ``model.cfg`` is the config.

    Args:
        trusted: unpickle the checkpoint fully (only for files you trust);
            files in the config's ``trusted_checkpoints`` are trusted too,
            as :class:`PruningRunner` trusts them.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('data_preprocessor') is not None:
        # mmpretrain's configs keep it at the top level; mmengine's Runner
        # merges it into the model, and so does this
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    scope = cfg.get('default_scope')
    if scope is not None:
        init_default_scope(scope)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if checkpoint is not None:
        trusted = trusted or _listed(checkpoint, cfg)
        ckpt = load_file(checkpoint, map_location='cpu', trusted=trusted)
        from_plain(ckpt)
        record = architecture_of(ckpt)
        if record is not None:
            with named_file(checkpoint):
                restore_architecture(model, record,
                                     ckpt.get('state_dict', ckpt))
        try:
            _load_checkpoint_to_model(model, ckpt, strict=True)
        except RuntimeError as error:
            raise RuntimeError(f'{checkpoint} does not fit the model of this '
                               f'config: {error}') from None
    model.cfg = cfg
    return model.to(device).eval()


def _listed(checkpoint: str, cfg: Config) -> bool:
    """Whether the config's ``trusted_checkpoints`` names ``checkpoint``."""
    def key(path):
        return osp.realpath(osp.expanduser(path))

    return any(f and '://' not in f and key(f) == key(checkpoint)
               for f in cfg.get('trusted_checkpoints', None) or ())
