"""What prunedet's tools share: their common options and the set-up behind
them. Only ``argparse`` and mmengine's config action are imported up front,
so ``--help`` answers at once; everything heavy loads in :func:`setup`."""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmengine.config import DictAction  # noqa: E402


def add_checkpoint_args(parser: argparse.ArgumentParser,
                        cfg_options: bool = True) -> None:
    """``--cfg-options`` and ``--trust-checkpoint``, as every tool that
    loads a config and a checkpoint spells them."""
    if cfg_options:
        parser.add_argument(
            '--cfg-options',
            nargs='+',
            action=DictAction,
            help='override config settings, xxx=yyy format')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='unpickle the checkpoint given (or load_from) fully: it may '
        'run code, so only for files you trust. Without it, checkpoints '
        'load with torch.load(weights_only=True) and an allowlist')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options mmdet's and mmpretrain's train and test tools share,
    plus ``--data-root`` and ``--trust-checkpoint``."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--data-root', help='dataset folder, replacing the config\'s one')
    add_checkpoint_args(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def setup(args: argparse.Namespace, checkpoint: str = None):
    """Import prunedet (registering its modules), read the config, make
    checkpoint loading safe. Returns the config."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    import prunedet  # noqa: F401  (registers prunedet's modules)
    from prunedet.engine.checkpoints import use_safe_loaders
    from prunedet.utils.config import load_config
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.data_root, args.launcher)
    if args.launcher == 'pytorch':
        _cpu_distributed(cfg)
    trusted = list(cfg.get('trusted_checkpoints', None) or [])
    if args.trust_checkpoint:
        trusted.append(checkpoint or cfg.get('load_from'))
    use_safe_loaders(trusted)
    return cfg


def build_runner(cfg):
    """The config's ``runner_type``, or :class:`PruningRunner` (mmengine's
    Runner, loading checkpoints safely and rebuilding pruned ones)."""
    from mmengine.registry import RUNNERS
    if 'runner_type' not in cfg:
        cfg.runner_type = 'PruningRunner'
    return RUNNERS.build(cfg)


def _cpu_distributed(cfg) -> None:
    """Distributed training without GPUs: mmengine's pytorch launcher sets
    a CUDA device and its DDP wrapper passes ``device_ids``; both fail on a
    CPU-only machine. Start gloo here (mmengine then keeps the group) and
    wrap without device ids."""
    import torch
    import torch.distributed as torch_dist
    if torch.cuda.is_available() or torch_dist.is_initialized():
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
    if backend not in (None, 'gloo'):
        print(f'no GPU: distributed backend {backend!r} -> gloo')
    torch_dist.init_process_group('gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def close_distributed() -> None:
    """Leave the process group before the interpreter exits: a gloo group
    still open at shutdown can abort a rank after training has finished
    ('terminate called without an active exception'). Nothing to do, and
    nothing imported, where torch never was (``--help``)."""
    if 'torch' not in sys.modules:
        return
    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
