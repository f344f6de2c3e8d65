"""Train (and prune) a model from a config, like mmdet's tools/train.py."""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import (add_common_args, build_runner,  # noqa: E402
                    close_distributed, setup)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the newest complete '
        'one in the work dir when no path is given')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate with the total batch size')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    resume = args.resume if args.resume not in (None, 'auto') else None
    cfg = setup(args, checkpoint=resume)
    from prunedet.engine.checkpoints import find_resume_checkpoint

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr') or {}
        if 'base_batch_size' not in scale:
            raise ValueError(
                f'--auto-scale-lr: {args.config} has no '
                'auto_scale_lr.base_batch_size (the total batch size its lr '
                'was tuned for); add auto_scale_lr = dict(base_batch_size=N)')
        cfg.auto_scale_lr = dict(scale, enable=True)
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    if cfg.get('resume') and not cfg.get('load_from'):
        # mmengine follows only `last_checkpoint` and starts from scratch
        # (overwriting) without it; take the newest complete checkpoint
        cfg.load_from = find_resume_checkpoint(cfg.work_dir, _Warn())
        if cfg.load_from is None:
            cfg.resume = False
            print(f'--resume: no checkpoint in {cfg.work_dir}, starting '
                  'from scratch')
    runner = build_runner(cfg)
    runner.train()
    return runner


class _Warn:
    """Warnings before the runner (and its logger) exist."""

    @staticmethod
    def warning(msg):
        print(f'WARNING: {msg}', file=sys.stderr)


if __name__ == '__main__':
    try:
        main()
    finally:
        close_distributed()
