"""Checkpoints load on torch >= 2.6 and are written atomically."""
import os

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import save_checkpoint

from prunedet.engine.checkpoints import (from_plain, load_file, to_plain,
                                         write_atomic)


def test_plain_checkpoints_load_with_weights_only_and_restore(tmp_path):
    path = str(tmp_path / 'a.pth')
    ckpt = {'message_hub': {'log_scalars': {
        'loss': HistoryBuffer([1., 2.], [1, 1])},
        'runtime_info': {'eta': np.float64(3.5)}},
            'meta': {'seed': np.int64(3)}}
    to_plain(ckpt)
    save_checkpoint(ckpt, path)
    loaded = torch.load(path, weights_only=True)  # torch's own default
    from_plain(loaded)
    buf = loaded['message_hub']['log_scalars']['loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == 1.5
    assert loaded['message_hub']['runtime_info']['eta'] == 3.5


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'latest.pth')
    write_atomic(b'one', path)
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)

    def crash(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError, match='disk full'):
        write_atomic(b'two', path)
    monkeypatch.undo()
    assert open(path, 'rb').read() == b'one'
    assert os.listdir(str(tmp_path)) == ['latest.pth']  # no temp left over


def test_load_file_refuses_foreign_globals(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': HistoryBuffer([1.], [1])}, path)  # needs getattr
    with pytest.raises(Exception, match='builtins.getattr'):
        load_file(path)
