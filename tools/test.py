"""Evaluate a (pruned) checkpoint, like mmdet's tools/test.py.

The pruned architecture is saved in the checkpoint: the config's pruning
hook shrinks the freshly built model to it before the weights are loaded.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import prunedet  # noqa: E402,F401  (registers prunedet's modules)
from mmengine.runner import Runner  # noqa: E402
from prunedet.utils.config import DictAction, load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the results')
    parser.add_argument(
        '--out', help='dump the metrics (and predictions) to this file')
    parser.add_argument(
        '--data-root', help='dataset folder, replacing the config\'s one')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, xxx=yyy format')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.data_root, args.launcher)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpResults', out_file_path=args.out))
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    print(metrics)
    return metrics


if __name__ == '__main__':
    main()
