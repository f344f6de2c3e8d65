"""Build a (pruned) model from its config and checkpoint, outside a Runner.

The counterpart of mmdet's ``init_detector`` / mmpretrain's ``get_model``
for pruned checkpoints: the architecture recorded in the checkpoint shrinks
the freshly built model before the weights are loaded, strictly.
"""
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope, init_default_scope

from prunedet.engine.checkpoints import from_plain, load_file, trust
from prunedet.engine.runner_model import (architecture_of, load_weights,
                                          named_file)
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
        trust(f for f in cfg.get('trusted_checkpoints', None) or ()
              if f and '://' not in f)
        ckpt = load_file(checkpoint, map_location='cpu', trusted=trusted)
        from_plain(ckpt)
        record = architecture_of(ckpt)
        if record is not None:
            with named_file(checkpoint):
                restore_architecture(model, record,
                                     ckpt.get('state_dict', ckpt))
        load_weights(model, ckpt, checkpoint, strict=True)
    model.cfg = cfg
    return model.to(device).eval()

