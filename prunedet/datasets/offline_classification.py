"""MNIST, Fashion-MNIST and CIFAR-10 read from local files, never downloaded.

mmpretrain's datasets download what is missing and require the official
md5 sums of the CIFAR batches. prunedet runs offline and is tested on files it
writes itself in the same formats, so these variants name any missing file
before training starts and do not compare checksums.
"""
import os.path as osp
from typing import List

from mmpretrain.datasets import CIFAR10, MNIST, FashionMNIST
from mmpretrain.datasets.utils import rm_suffix
from mmpretrain.registry import DATASETS


def _require(cls_name: str, root: str, files: List[str], hint: str) -> None:
    missing = [f for f in files if not osp.isfile(osp.join(root, f))]
    if missing:
        raise FileNotFoundError(
            f'{cls_name}: {root!r} is missing {missing}. {hint}')


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
