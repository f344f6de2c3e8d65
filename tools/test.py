"""Evaluate a (pruned) checkpoint, like mmdet's tools/test.py.

The pruned architecture is recorded in the checkpoint: the freshly built
model is shrunk to it before the weights are loaded, whatever the config's
hooks. Loading is strict: a checkpoint that does not fit the config's model
(missing, unexpected or misshapen weights) is an error, not a silently
random layer.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import (add_common_args, build_runner,  # noqa: E402
                    close_distributed, setup)


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
    cfg = setup(args, checkpoint=args.checkpoint)
    cfg.load_from, cfg.resume, cfg.strict_load = args.checkpoint, False, True
    if args.out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpResults', out_file_path=args.out))
    metrics = build_runner(cfg).test()
    print(metrics)
    return metrics


if __name__ == '__main__':
    try:
        main()
    finally:
        close_distributed()
