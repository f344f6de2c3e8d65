"""MNIST/CIFAR files that are truncated, inconsistent or hostile are named."""
import os
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

from prunedet.datasets.offline_classification import DatasetFileError


def build(kind, root, test_mode=False):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(
            dict(type=kind, data_root=root, test_mode=test_mode,
                 split='test' if test_mode else 'train',
                 pipeline=[]))


def test_truncated_or_mismatched_mnist_files_are_named(tmp_path, mnist_root):
    assert len(build('OfflineMNIST', mnist_root)) == 256
    root = str(tmp_path / 'mnist')
    shutil.copytree(mnist_root, root)
    images = osp.join(root, 'train-images-idx3-ubyte')
    with open(images, 'r+b') as f:
        f.truncate(os.path.getsize(images) - 100)
    with pytest.raises(DatasetFileError,
                       match='train-images-idx3-ubyte: .* truncated'):
        build('OfflineMNIST', root)
    shutil.copy(osp.join(mnist_root, 'train-images-idx3-ubyte'), images)
    labels = osp.join(root, 'train-labels-idx1-ubyte')
    with open(labels, 'r+b') as f:  # a consistent file of fewer labels
        f.seek(4)
        f.write((200).to_bytes(4, 'big'))
        f.truncate(8 + 200)
    with pytest.raises(DatasetFileError, match='256 images but .* 200 '
                       'labels'):
        build('OfflineMNIST', root)


class Payload:

    def __reduce__(self):
        return os.system, ('touch /tmp/prunedet_cifar_pwned', )


def test_truncated_or_hostile_cifar_batches_are_named(tmp_path, cifar_root):
    assert len(build('OfflineCIFAR10', cifar_root, test_mode=True)) == 100
    root = str(tmp_path / 'cifar')
    shutil.copytree(cifar_root, root)
    batch = osp.join(root, 'cifar-10-batches-py', 'test_batch')
    data = open(batch, 'rb').read()
    with open(batch, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(DatasetFileError, match='test_batch: not a readable'):
        build('OfflineCIFAR10', root, test_mode=True)
    with open(batch, 'wb') as f:
        pickle.dump({'data': np.zeros((2, 3072), np.uint8),
                     'labels': [0, 1], 'note': Payload()}, f)
    with pytest.raises(DatasetFileError, match='refused global posix.system'):
        build('OfflineCIFAR10', root, test_mode=True)
    assert not osp.exists('/tmp/prunedet_cifar_pwned')
    with open(batch, 'wb') as f:
        pickle.dump({'data': np.zeros((3, 3072), np.uint8),
                     'labels': [0, 1]}, f)
    with pytest.raises(DatasetFileError, match=r'data uint8 \(3, 3072\) and 2 '
                       'labels'):
        build('OfflineCIFAR10', root, test_mode=True)


@pytest.mark.parametrize('config', [
    'lenet5_mnist', 'resnet20_mnist', 'lenet5_fashion_mnist',
    'resnet20_fashion_mnist', 'vgg19_cifar10', 'resnet56_cifar10'
])
def test_configs_evaluate_on_the_test_split(config, mnist_root, cifar_root,
                                            tmp_path):
    """mmpretrain reads the *train* split when only test_mode is set."""
    from conftest import config_path
    from prunedet.utils.config import load_config
    root = cifar_root if 'cifar' in config else mnist_root
    if 'fashion' in config:  # Fashion-MNIST's files are MNIST's format
        root = str(tmp_path / 'fashion')
        shutil.copytree(mnist_root, root)
    cfg = load_config(config_path('classification', f'{config}.py'),
                      data_root=root)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        sizes = [len(DATASETS.build(cfg[f'{s}_dataloader'].dataset))
                 for s in ('train', 'val', 'test')]
    assert sizes == ([200, 100, 100] if 'cifar' in config else
                     [256, 128, 128])


def idx_file(path, shape, body=None):
    """An IDX file of uint8 declaring ``shape``, holding ``body``."""
    if body is None:
        body = bytes(int(np.prod(shape)))
    with open(path, 'wb') as f:
        f.write(bytes((0, 0, 8, len(shape))))
        f.write(b''.join(n.to_bytes(4, 'big') for n in shape))
        f.write(body)


@pytest.fixture
def mnist(tmp_path, mnist_root):
    root = str(tmp_path / 'mnist')
    shutil.copytree(mnist_root, root)
    return root


def test_a_label_outside_the_classes_is_named(mnist):
    """It failed at the first iteration, naming no file."""
    labels = osp.join(mnist, 'train-labels-idx1-ubyte')
    with open(labels, 'r+b') as f:
        f.seek(8 + 17)
        f.write(bytes((10, )))
    with pytest.raises(DatasetFileError, match='train-labels-idx1-ubyte: 1 '
                       r'labels outside 0..9, e.g. 10 at item 17'):
        build('OfflineMNIST', mnist)


@pytest.mark.parametrize('images, labels', [
    ((0, 28, 28), (0, )),  # was: need at least one array to concatenate
    ((4, 0, 28), (4, )),
])
def test_an_empty_idx_file_is_named(mnist, images, labels):
    idx_file(osp.join(mnist, 't10k-images-idx3-ubyte'), images)
    idx_file(osp.join(mnist, 't10k-labels-idx1-ubyte'), labels)
    with pytest.raises(DatasetFileError, match='t10k-images-idx3-ubyte: its '
                       r'header describes \(.*\), an empty array'):
        build('OfflineMNIST', mnist, test_mode=True)


def test_a_header_claiming_more_than_the_file_is_refused_unread(mnist):
    """Sizes whose product wraps around 2**64 matched an empty file."""
    import tracemalloc
    images = osp.join(mnist, 't10k-images-idx3-ubyte')
    labels = osp.join(mnist, 't10k-labels-idx1-ubyte')
    idx_file(images, (2**22, 2**22, 2**20), b'')
    idx_file(labels, (2**22, ), bytes(2**22))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetFileError, match='t10k-images-idx3-ubyte: '
                           r'16 bytes, but its header describes'):
            build('OfflineMNIST', mnist, test_mode=True)
        assert tracemalloc.get_traced_memory()[1] < 16 * 2**20
    finally:
        tracemalloc.stop()


def write_batch(path, entry):
    with open(path, 'wb') as f:
        pickle.dump(entry, f)


@pytest.mark.parametrize('entry, message', [
    ({'data': np.zeros((2, 3072), np.uint8), 'labels': [0, 10]},
     r'1 labels outside 0..9, e.g. 10 at item 1'),
    ({'data': np.zeros((2, 3072), np.uint8), 'labels': [-1, 3]},
     r'1 labels outside 0..9, e.g. -1 at item 0'),
    ({'data': np.zeros((2, 3072), np.uint8), 'labels': ['cat', 'dog']},
     'labels must be a list of integers'),
    ({'data': np.zeros((2, 3072)), 'labels': [0, 1]},
     r'3072 uint8 pixels .* got data float64 \(2, 3072\)'),
    ([np.zeros((2, 3072), np.uint8), [0, 1]], 'a list, not a CIFAR batch'),
    ({'data': np.zeros((0, 3072), np.uint8), 'labels': []}, 'hold no image'),
])
def test_cifar_batches_with_bad_labels_or_pixels_are_named(
        tmp_path, cifar_root, entry, message):
    root = str(tmp_path / 'cifar')
    shutil.copytree(cifar_root, root)
    write_batch(osp.join(root, 'cifar-10-batches-py', 'test_batch'), entry)
    with pytest.raises(DatasetFileError, match=message):
        build('OfflineCIFAR10', root, test_mode=True)
