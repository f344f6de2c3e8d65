"""MNIST, Fashion-MNIST and CIFAR-10 read from local files, never downloaded.

mmpretrain's datasets download what is missing and require the official
md5 sums of the CIFAR batches. prunedet runs offline and is tested on files it
writes itself in the same formats, so these variants name any missing file
before training starts and do not compare checksums. They also name, before
training, a file that is truncated, empty, whose header is not IDX's or
claims more than the file holds, whose images and labels do not match, or
that has a label outside the classes (mmpretrain fails later, in a reshape or
at the first iteration, naming nothing). The CIFAR batches are unpickled with
an allowlist of numpy's array types only: a dataset file is untrusted input,
like a checkpoint.
"""
import io
import math
import os.path as osp
import pickle
import struct
from typing import List, Tuple

import numpy as np

from mmpretrain.datasets import CIFAR10, MNIST, FashionMNIST
from mmpretrain.datasets.utils import rm_suffix
from mmpretrain.registry import DATASETS


def _require(cls_name: str, root: str, files: List[str], hint: str) -> None:
    missing = [f for f in files if not osp.isfile(osp.join(root, f))]
    if missing:
        raise FileNotFoundError(
            f'{cls_name}: {root!r} is missing {missing}. {hint}')


class DatasetFileError(ValueError):
    """A dataset file that is truncated, malformed or inconsistent."""


def idx_shape(path: str, dims: int) -> Tuple[int, ...]:
    """The shape of an IDX file of uint8 data (MNIST's format), checked
    against the file's size before any of it is read, so that a header
    claiming 10**9 items is refused without allocating them."""
    with open(path, 'rb') as f:
        header = f.read(4 + 4 * dims)
    if len(header) < 4 + 4 * dims or header[:4] != bytes((0, 0, 8, dims)):
        raise DatasetFileError(
            f'{path}: not an IDX file of {dims}-D uint8 data (header starts '
            f'{header[:4].hex()}, expected {bytes((0, 0, 8, dims)).hex()})')
    shape = struct.unpack(f'>{dims}I', header[4:])
    expected = len(header) + math.prod(shape)  # Python ints: no overflow
    size = osp.getsize(path)
    if size != expected:
        raise DatasetFileError(
            f'{path}: {size} bytes, but its header describes {shape} '
            f'({expected} bytes): the file is truncated or corrupt')
    if not all(shape):
        raise DatasetFileError(
            f'{path}: its header describes {shape}, an empty array')
    return shape


def _array(path: str, value, what: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise DatasetFileError(
            f'{path}: {what} are not an array ({error})') from None


def check_labels(path: str, labels, num_classes: int) -> None:
    """Refuse labels that are not integers in ``0..num_classes - 1``."""
    labels = _array(path, labels, 'labels')
    if labels.ndim != 1 or labels.size and labels.dtype.kind not in 'iu':
        raise DatasetFileError(
            f'{path}: labels must be a list of integers, got '
            f'{labels.dtype} of shape {labels.shape}')
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DatasetFileError(
            f'{path}: {bad.size} labels outside 0..{num_classes - 1}, e.g. '
            f'{labels[bad[0]]} at item {bad[0]}')


class _ArraysOnly(pickle.Unpickler):
    """Unpickles CIFAR's batches (dicts, lists, bytes, numpy arrays) and
    nothing else."""
    ALLOWED = {('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode'),
               ('numpy.core.multiarray', '_reconstruct'),
               ('numpy._core.multiarray', '_reconstruct')}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f'refused global {module}.{name} (not a CIFAR batch)')
        return super().find_class(module, name)


def load_pickle(path: str):
    """A CIFAR python batch, naming the file if it cannot be read."""
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return _ArraysOnly(io.BytesIO(data), encoding='latin1').load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise DatasetFileError(
            f'{path}: not a readable CIFAR batch ({error})') from None


class _NoDownload:
    """Refuse ``download=True``: nothing is fetched at run time."""

    def __init__(self, *args, download: bool = False, **kwargs):
        if download:
            raise ValueError(f'{type(self).__name__} never downloads; put '
                             'the dataset files under data_root instead')
        super().__init__(*args, download=False, **kwargs)


@DATASETS.register_module()
class OfflineMNIST(_NoDownload, MNIST):
    """MNIST from the four uncompressed IDX files in ``data_root``."""

    def _check_exists(self) -> bool:
        files = [rm_suffix(f) for f, _ in self.train_list + self.test_list]
        _require(
            type(self).__name__, self.data_prefix['root'], files,
            'Expected the uncompressed IDX files (gunzip the .gz archives).')
        return True

    def load_data_list(self):
        self._check_exists()
        files = self.train_list if self.split == 'train' else self.test_list
        images, labels = (osp.join(self.data_prefix['root'], rm_suffix(f))
                          for f, _ in files)
        count = idx_shape(images, 3)[0]
        (num_labels, ) = idx_shape(labels, 1)
        if count != num_labels:
            raise DatasetFileError(
                f'{images} holds {count} images but {labels} '
                f'{num_labels} labels')
        check_labels(labels, np.fromfile(labels, np.uint8, offset=8),
                     len(self.CLASSES))
        return super().load_data_list()


@DATASETS.register_module()
class OfflineFashionMNIST(OfflineMNIST):
    train_list = FashionMNIST.train_list
    test_list = FashionMNIST.test_list
    METAINFO = FashionMNIST.METAINFO


@DATASETS.register_module()
class OfflineCIFAR10(_NoDownload, CIFAR10):
    """CIFAR-10 from the python-pickle batches in
    ``data_root/cifar-10-batches-py``."""
    train_list = [[f, None] for f, _ in CIFAR10.train_list]
    test_list = [[f, None] for f, _ in CIFAR10.test_list]
    meta = dict(CIFAR10.meta, md5=None)

    def _check_integrity(self) -> bool:
        files = [f for f, _ in self.train_list + self.test_list]
        files.append(self.meta['filename'])
        _require(
            type(self).__name__,
            osp.join(self.data_prefix['root'], self.base_folder), files,
            'Expected the extracted cifar-10-python.tar.gz.')
        return True

    def load_data_list(self):
        self._check_integrity()
        folder = osp.join(self.data_prefix['root'], self.base_folder)
        batches = self.train_list if self.split == 'train' else \
            self.test_list
        if self.CLASSES is None:
            meta_path = osp.join(folder, self.meta['filename'])
            meta = load_pickle(meta_path)
            if not isinstance(meta, dict) or self.meta['key'] not in meta:
                raise DatasetFileError(
                    f'{meta_path}: no {self.meta["key"]!r} (class names)')
            self._metainfo.setdefault('classes', meta[self.meta['key']])
        imgs, gt_labels = [], []
        for name, _ in batches:
            path = osp.join(folder, name)
            entry = load_pickle(path)
            if not isinstance(entry, dict):
                raise DatasetFileError(
                    f'{path}: a {type(entry).__name__}, not a CIFAR batch '
                    '(a dict of data and labels)')
            labels = entry.get('labels', entry.get('fine_labels'))
            check_labels(path, labels, len(self.CLASSES))
            data = _array(path, entry.get('data'), 'data')
            if data.dtype != np.uint8 or data.shape != (len(labels), 3072):
                raise DatasetFileError(
                    f'{path}: expected N rows of 3072 uint8 pixels and N '
                    f'labels, got data {data.dtype} {data.shape} and '
                    f'{len(labels)} labels')
            imgs.append(data)
            gt_labels.extend(labels)
        if not gt_labels:
            raise DatasetFileError(f'{folder}: the {self.split} batches '
                                   f'{[n for n, _ in batches]} hold no image')
        imgs = np.vstack(imgs).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
        return [{
            'img': img,
            'gt_label': int(label)
        } for img, label in zip(imgs, gt_labels)]
