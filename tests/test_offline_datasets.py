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
    with pytest.raises(DatasetFileError, match=r'data \(3, 3072\) and 2 '
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
