"""Checkpoints load on torch >= 2.6 and are written atomically."""
import os

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

import prunedet.engine.checkpoint_io  # noqa: F401


def test_mmengine_checkpoints_with_python_objects_load(tmp_path):
    path = str(tmp_path / 'a.pth')
    ckpt = {'message_hub': {'loss': HistoryBuffer([1., 2.], [1, 1])},
            'meta': {'seed': np.int64(3)}}
    save_checkpoint(ckpt, path)
    with pytest.raises(Exception, match='weights_only'):
        torch.load(path)  # what mmengine 0.10.7 alone does on torch >= 2.6
    loaded = _load_checkpoint(path)
    assert loaded['message_hub']['loss'].mean() == 1.5


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'latest.pth')
    save_checkpoint({'v': torch.ones(2)}, path)
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)

    def crash(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint({'v': torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(_load_checkpoint(path)['v'], torch.ones(2))
    assert os.listdir(str(tmp_path)) == ['latest.pth']  # no temp left over
