"""Write the demo's detection dataset: drawn shapes in the VOC devkit layout.

    python tools/data/make_shapes_voc.py data/shapes_voc [--trainval 400]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from prunedet.datasets.synthetic_voc import write_shapes_voc  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='devkit folder to write')
    parser.add_argument('--trainval', type=int, default=400)
    parser.add_argument('--test', type=int, default=100)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    write_shapes_voc(args.root, args.trainval, args.test,
                     (args.size, args.size), seed=args.seed)
    print(f'wrote {args.trainval} trainval + {args.test} test images to '
          f'{args.root}/VOC2007')


if __name__ == '__main__':
    main()
