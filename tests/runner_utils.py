"""Building and running mmengine Runners from the project's configs."""
import itertools
import os

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from conftest import config_path
from prunedet.engine import PruningRunner
from prunedet.utils.config import load_config

_count = itertools.count()


@HOOKS.register_module()
class RecordLossHook(Hook):
    """Keeps every training loss (and all that the step logged), keyed by
    the iteration it was computed in."""
    priority = 'LOWEST'
    losses = {}
    outputs = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        RecordLossHook.losses[runner.iter] = outputs['loss'].item()
        RecordLossHook.outputs[runner.iter] = {
            k: float(v)
            for k, v in outputs.items()
        }


def small_cfg(config, work_dir, data_root, **options):
    """A project config on small data: a few short epochs, quiet logging."""
    cfg = load_config(
        config_path(*config.split('/')),
        work_dir=str(work_dir),
        data_root=data_root)
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 32,
        'train_dataloader.num_workers': 0,
        'val_dataloader.num_workers': 0,
        'test_dataloader.num_workers': 0,
        'train_cfg.max_epochs': 3,
        'default_hooks.logger.interval': 4,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'experiment_name': f'test_{os.getpid()}_{next(_count)}',
        **options
    })
    return cfg


def build_runner(cfg):
    """The runner the tools build (mmengine's, loading checkpoints safely
    and rebuilding pruned ones)."""
    return PruningRunner.from_cfg(cfg)
