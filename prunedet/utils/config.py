"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import os
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config, DictAction


def set_data_root(cfg: Config, data_root: str) -> int:
    """Point every dataset of ``cfg`` at ``data_root``.

    Configs name their data folder once (``data_root``) but it is copied into
    each dataloader's dataset (and into wrapped datasets) when the config is
    read; this replaces every such copy. Returns how many were replaced.
    """
    old = cfg.get('data_root')
    count = 0

    def visit(node: Any) -> None:
        nonlocal count
        if isinstance(node, dict):
            for key, value in node.items():
                if key == 'data_root' and (old is None or value == old):
                    node[key] = data_root
                    count += 1
                else:
                    visit(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                visit(item)

    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        visit(cfg.get(key))
    cfg.data_root = data_root
    return count


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                data_root: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config the way mmdet/mmpretrain's tools do, plus
    ``--data-root``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root:
        if set_data_root(cfg, data_root) == 0:
            raise ValueError(f'{path} has no dataset with a data_root')
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg
