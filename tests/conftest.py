import io
import logging
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import prunedet  # noqa: E402,F401  (registers modules)
from prunedet.datasets.synthetic import write_cifar10, write_mnist  # noqa


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def mnist_root(tmp_path_factory):
    return write_mnist(str(tmp_path_factory.mktemp('mnist')), 256, 128)


@pytest.fixture(scope='session')
def cifar_root(tmp_path_factory):
    return write_cifar10(str(tmp_path_factory.mktemp('cifar')), 200, 100)


def config_path(*parts):
    return os.path.join(ROOT, 'configs', *parts)


@pytest.fixture
def logged():
    """What mmengine's current logger writes during the test, as text.

    ``MMLogger`` does not propagate and its stream handler keeps the stdout
    of whichever test created it, so neither ``caplog`` nor ``capsys`` sees
    its lines reliably."""
    from mmengine.logging import MMLogger
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield stream.getvalue
    finally:
        logger.removeHandler(handler)
