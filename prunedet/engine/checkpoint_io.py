"""Checkpoint files that load on torch >= 2.6 and are never half-written.

* torch 2.6 made ``torch.load(weights_only=True)`` the default, and
  mmengine 0.10.7's checkpoints hold its ``HistoryBuffer`` and numpy objects,
  so ``resume``/``load_from`` fail. Local checkpoints are files the user chose
  to load, so mmengine's local loader is replaced by one that loads them
  whole, as torch did before 2.6.
* mmengine writes a checkpoint in place: a crash mid-write destroys the
  previous file of that name. Local writes go to a temporary file in the same
  folder that is then renamed over the target, which is atomic.

Both take effect when prunedet is imported.
"""
import os
import os.path as osp
import tempfile

import mmengine.fileio.io as fileio
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


_UMASK = os.umask(0)
os.umask(_UMASK)


class AtomicLocalBackend(LocalBackend):
    """:class:`LocalBackend` whose writes replace the target atomically."""

    def _replace(self, data: bytes, filepath) -> None:
        folder = osp.dirname(osp.abspath(filepath))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=folder, prefix=f'.{osp.basename(filepath)}.', suffix='.tmp')
        try:
            os.chmod(tmp, 0o666 & ~_UMASK)  # what open() would have given
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    def put(self, obj: bytes, filepath) -> None:
        self._replace(obj, filepath)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        self._replace(obj.encode(encoding), filepath)


def install() -> None:
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # drop plain local backends mmengine may already have cached
    for key, backend in list(fileio.backend_instances.items()):
        if type(backend) is LocalBackend:
            del fileio.backend_instances[key]


install()
