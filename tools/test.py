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
from prunedet.utils.config import add_common_args, config_from_args  # noqa: E402,E501


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the metrics (and predictions) to this file')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist')
    cfg = config_from_args(args)
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
