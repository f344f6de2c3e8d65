"""Small learnable datasets written in the real file formats.

Tests and demos need data on a machine that has none and may download none.
These writers produce genuine IDX (MNIST) and pickled-batch (CIFAR-10) files
that the dataset classes read exactly like the originals; each class is a
fixed random template, shifted and noised per sample, so accuracy well above
chance is reachable in a few hundred CPU iterations.
"""
import gzip
import os
import os.path as osp
import pickle
import struct
from typing import Tuple

import numpy as np

MNIST_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
               't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def _templates(num_classes: int, shape: Tuple[int, ...],
               rng: np.random.Generator) -> np.ndarray:
    """Smooth random blobs, one per class."""
    h, w = shape[:2]
    coarse = rng.random((num_classes, -(-h // 4), -(-w // 4)) +
                        tuple(shape[2:]))
    return coarse.repeat(4, axis=1).repeat(4, axis=2)[:, :h, :w]


def make_images(num: int,
                shape: Tuple[int, ...],
                num_classes: int = 10,
                seed: int = 0,
                noise: float = 0.15,
                template_seed: int = 1234):
    """``num`` uint8 images of ``shape`` (H, W[, C]) and their labels."""
    rng = np.random.default_rng(seed)
    templates = _templates(num_classes, shape,
                           np.random.default_rng(template_seed))
    labels = rng.integers(0, num_classes, num)
    images = np.empty((num, ) + tuple(shape), dtype=np.uint8)
    for i, label in enumerate(labels):
        img = np.roll(templates[label], rng.integers(-2, 3, 2), axis=(0, 1))
        img = img + rng.normal(0, noise, img.shape)
        images[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return images, labels.astype(np.uint8)


def _idx(array: np.ndarray) -> bytes:
    """Serialise a uint8 array in the IDX format (magic 0x08, big endian)."""
    header = struct.pack('>HBB', 0, 0x08, array.ndim)
    header += struct.pack('>' + 'I' * array.ndim, *array.shape)
    return header + array.tobytes()


def write_mnist(root: str,
                num_train: int = 512,
                num_test: int = 256,
                seed: int = 0,
                compress: bool = False) -> str:
    """Write MNIST-format IDX files (28x28, 10 classes) under ``root``."""
    os.makedirs(root, exist_ok=True)
    train = make_images(num_train, (28, 28), seed=seed)
    test = make_images(num_test, (28, 28), seed=seed + 1)
    arrays = (train[0], train[1], test[0], test[1])
    for name, array in zip(MNIST_FILES, arrays):
        data = _idx(array)
        if compress:
            with gzip.open(osp.join(root, name + '.gz'), 'wb') as f:
                f.write(data)
        else:
            with open(osp.join(root, name), 'wb') as f:
                f.write(data)
    return root


def write_cifar10(root: str,
                  num_train: int = 500,
                  num_test: int = 200,
                  seed: int = 0) -> str:
    """Write CIFAR-10-format pickled batches under
    ``root/cifar-10-batches-py``."""
    folder = osp.join(root, 'cifar-10-batches-py')
    os.makedirs(folder, exist_ok=True)

    def dump(name, images, labels):
        data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        entry = {'batch_label': name, 'labels': labels.tolist(), 'data': data,
                 'filenames': [f'{name}_{i}.png' for i in range(len(images))]}
        with open(osp.join(folder, name), 'wb') as f:
            pickle.dump(entry, f)

    images, labels = make_images(num_train, (32, 32, 3), seed=seed)
    for k, part in enumerate(np.array_split(np.arange(num_train), 5)):
        dump(f'data_batch_{k + 1}', images[part], labels[part])
    dump('test_batch', *make_images(num_test, (32, 32, 3), seed=seed + 1))
    names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
             'horse', 'ship', 'truck']
    with open(osp.join(folder, 'batches.meta'), 'wb') as f:
        pickle.dump({'label_names': names, 'num_vis': 3072,
                     'num_cases_per_batch': num_train // 5}, f)
    return root
