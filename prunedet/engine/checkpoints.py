"""Checkpoints that load without running code and are never half-written.

**Loading.** A checkpoint is untrusted input: unpickling one may run any code
it names. Every prunedet entry point loads with ``torch.load(weights_only=True)``
and an allowlist of exactly what mmengine checkpoints hold besides tensors
(:data:`SAFE_GLOBALS`: mmengine's ``HistoryBuffer`` and numpy's arrays,
scalars and dtypes). mmengine's ``HistoryBuffer`` also pickles its statistics
methods through ``builtins.getattr``, which cannot be allowed (``getattr``
reaches anything), so checkpoints written by prunedet's hooks store the
message hub as plain data (:func:`to_plain`) and need no allowlist at all;
a checkpoint that names any other global is refused with an error naming the
file and the global. Full unpickling happens only for files the user trusts
(``--trust-checkpoint``), never silently. URLs and ``modelzoo://``-style
names get the same rule (:func:`use_safe_loaders`).

**Writing.** mmengine writes a checkpoint in place; :class:`AtomicLocalBackend`
(``backend_args=dict(backend='atomic_local')``, the default of
:class:`~prunedet.engine.hooks.SafeCheckpointHook`) writes a temporary file in
the same folder and renames it over the target, so a crash mid-write never
destroys a complete file.

**Temporary files of killed writes.** Their names say who writes them:
``.<target>.<random>.<pid>@<host>.tmp``. A run starting in a work dir
(:func:`find_resume_checkpoint`, ``SafeCheckpointHook.before_train``) removes
one only if its writer is gone: written on this host by a process that no
longer exists. Another run's live save (a second run in the same work dir, or
another rank) is left alone, and so is a file from another host, whose
processes cannot be seen from here (both with a warning). Names without a
writer (prunedet before this scheme) are removed once untouched for
:data:`UNNAMED_TEMP_AGE`. There is no lock on the work dir: the names alone
keep every live write, leave nothing to release after ``kill -9`` and refuse
no legitimate sharer (ranks, ``tools/test.py``, the report). A reused pid
keeps a dead writer's file: a leak, never a loss.

**Resuming** takes the newest complete training state
(:func:`newest_checkpoint`): checkpoints are ordered by the step in their
name (or the ``meta`` they saved), ``last_checkpoint`` is one candidate among
them (a kill between the rename and the pointer update leaves it behind),
truncated files are skipped and ``best_*.pth`` (no optimizer) is never taken.
"""
import glob
import hashlib
import os
import os.path as osp
import pickle
import re
import socket
import tempfile
import time
import zipfile
from typing import Iterable, List, Optional

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer

_np_core = getattr(np, '_core', None) or np.core
SAFE_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _np_core.multiarray._reconstruct,
    _np_core.multiarray.scalar,
]
TEMP_SUFFIX = '.tmp'
UNNAMED_TEMP_AGE = 3600  # seconds; a save writes its file in seconds
_PLAIN_BUFFER = '__history_buffer__'
_trusted: set = set()


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint names Python objects outside the allowlist."""


def _key(filename: str) -> str:
    return osp.realpath(osp.expanduser(filename))


def trust(filenames: Iterable[str]) -> None:
    """Let these files be unpickled fully (the user said they trust them)."""
    _trusted.update(_key(f) for f in filenames if f)


def is_trusted(filename: str) -> bool:
    return _key(filename) in _trusted


def _unsafe_globals(filename: str) -> List[str]:
    allowed = {f'{g.__module__}.{g.__qualname__}' for g in SAFE_GLOBALS}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # not a zip checkpoint: the loader's message says why
        return []
    return sorted(set(found) - allowed)


def load_file(filename: str, map_location=None, trusted: bool = False):
    """``torch.load`` a local checkpoint without running code from it.

    Raises:
        FileNotFoundError: no such file.
        UntrustedCheckpointError: the file names globals outside
            :data:`SAFE_GLOBALS`; the message names them and the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    if osp.getsize(filename) == 0:
        raise EOFError(f'checkpoint {filename!r} is empty (0 bytes): an '
                       'empty/truncated checkpoint, e.g. from an interrupted '
                       'copy; use another one')
    if trusted or is_trusted(filename):
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        names = _unsafe_globals(filename) or [_global_in(str(error))]
        raise UntrustedCheckpointError(
            f'refused to load {filename!r}: it names {", ".join(names)}, '
            'which loading would have to import and call (a checkpoint can '
            'run code this way). prunedet and mmengine checkpoints need '
            'none of it. If you trust this file, pass --trust-checkpoint '
            '(or list it in the config\'s trusted_checkpoints).') from None


def _global_in(message: str) -> str:
    """The global a refusal of torch's names (older file formats are not
    zip archives, so only torch's message says what they hold)."""
    match = re.search(r'(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)',
                      message)
    if match:
        return match.group(1)
    return 'a Python object outside the allowlist (' + \
        message.splitlines()[0][:200] + ')'


# --- mmengine's checkpoint loaders, made safe --------------------------------


def _load_local(filename, map_location=None):
    return load_file(filename, map_location)


def _load_url(url: str, map_location=None, trusted: bool = False):
    """Download into torch's hub cache (as mmengine does), load safely.

    The cached file is named after the whole URL (not only its file name,
    as ``torch.hub`` does): trusting one URL never unpickles a file that
    came from another. A refused download is deleted.
    """
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    name = osp.basename(url.split('?')[0]) or 'checkpoint.pth'
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    cached = osp.join(folder, f'{digest}-{name}')
    if not osp.exists(cached):
        os.makedirs(folder, exist_ok=True)
        torch.hub.download_url_to_file(url, cached, progress=False)
    try:
        return load_file(cached, map_location, trusted=trusted)
    except UntrustedCheckpointError as error:
        os.remove(cached)
        raise UntrustedCheckpointError(
            str(error).replace(repr(cached), f'{url!r} (downloaded, now '
                               'deleted)')) from None


def _load_http(filename, map_location=None):
    return _load_url(filename, map_location, filename in _trusted)


def _load_named(filename, map_location=None):
    """``modelzoo://``, ``open-mmlab://``, ``mmcls://``: mmengine's names for
    URLs (or local files)."""
    from mmengine.runner import checkpoint as ck
    prefix, name = filename.split('://', 1)
    if prefix in ('modelzoo', 'torchvision'):
        urls = ck.get_torchvision_models()
    elif prefix == 'mmcls':
        urls = ck.get_mmcls_models()
    else:
        urls = ck.get_external_models()
        name = ck.get_deprecated_model_names().get(name, name)
    if name not in urls:
        raise KeyError(f'{filename}: unknown model name {name!r}')
    url = urls[name]
    trusted = filename in _trusted or url in _trusted
    if url.startswith(('http://', 'https://')):
        return _load_url(url, map_location, trusted)
    return load_file(url, map_location, trusted)


def use_safe_loaders(trusted: Iterable[str] = ()) -> None:
    """Make mmengine load every checkpoint through :func:`load_file`.

    mmengine's own loaders call ``torch.load`` with torch's default for local
    files and ``torch.hub`` (full unpickling) for URLs. The entry points
    (``tools/*.py``) call this once, before the Runner loads anything;
    ``trusted`` are files or URLs the user vouched for.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    for f in trusted:
        if f and '://' in f:
            _trusted.add(f)
    trust(f for f in trusted if f and '://' not in f)
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=_load_http, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('modelzoo://', 'torchvision://', 'open-mmlab://',
                  'openmmlab://', 'mmcls://'),
        loader=_load_named,
        force=True)


# --- plain-data message hub ------------------------------------------------


def _plain(value):
    if isinstance(value, HistoryBuffer):
        return {
            _PLAIN_BUFFER: True,
            'max_length': value.max_length,
            'log': torch.from_numpy(np.asarray(value._log_history)).clone(),
            'count': torch.from_numpy(np.asarray(value._count_history)).clone(),
        }
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value).clone()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return type(value)((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _unplain(value):
    if isinstance(value, dict):
        if value.get(_PLAIN_BUFFER):
            return HistoryBuffer(value['log'].tolist(),
                                 value['count'].tolist(), value['max_length'])
        return type(value)((k, _unplain(v)) for k, v in value.items())
    return value


def to_plain(checkpoint: dict) -> None:
    """Store the message hub and meta data of ``checkpoint`` as plain data
    (no ``HistoryBuffer``, no numpy), so it loads with ``weights_only``."""
    for key in ('message_hub', 'meta'):
        if key in checkpoint:
            checkpoint[key] = _plain(checkpoint[key])


def from_plain(checkpoint: dict) -> None:
    """Undo :func:`to_plain` in place (before the runner reads the hub)."""
    if 'message_hub' in checkpoint:
        checkpoint['message_hub'] = _unplain(checkpoint['message_hub'])


# --- atomic writes -----------------------------------------------------------

_UMASK = os.umask(0)
os.umask(_UMASK)


def _host() -> str:
    return re.sub(r'[@/\s]', '_', socket.gethostname()) or 'localhost'


def write_atomic(data: bytes, filepath: str) -> None:
    """Write ``data`` to ``filepath`` through a renamed temporary file."""
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder,
        prefix=f'.{osp.basename(filepath)}.',
        suffix=f'.{os.getpid()}@{_host()}{TEMP_SUFFIX}')
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


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """:class:`LocalBackend` whose writes replace the target atomically."""

    def put(self, obj: bytes, filepath) -> None:
        write_atomic(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        write_atomic(obj.encode(encoding), str(filepath))


_WRITER = re.compile(r'\.([1-9]\d*)@([^@/]+)' + re.escape(TEMP_SUFFIX) + '$')


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _orphaned(path: str):
    """(whether the writer of a temporary file is gone, why)."""
    match = _WRITER.search(osp.basename(path))
    if match is None:
        age = time.time() - osp.getmtime(path)
        return (age > UNNAMED_TEMP_AGE,
                'its writer is unknown and it was last written '
                f'{age / 3600:.1f} h ago')
    pid, host = int(match.group(1)), match.group(2)
    if host != _host():
        return False, (f'written by pid {pid} on host {host!r}, which this '
                       'host cannot check; delete it if no run there '
                       'writes to this work dir')
    # This process saves nothing while a run starts: a file with its pid is
    # from an earlier process that had it (containers often run as pid 1).
    if pid != os.getpid() and _is_running(pid):
        return False, (f'pid {pid} is still writing it (another run in '
                       'this work dir?)')
    return True, f'pid {pid}, its writer, is gone'


def remove_orphaned_temp_files(folder: str, logger=None) -> List[str]:
    """Delete the temporary files of writes whose writer is gone (see the
    module's docstring); warn about the others. Returns those removed."""
    removed = []
    for path in sorted(glob.glob(osp.join(folder, '.*' + TEMP_SUFFIX))):
        try:
            orphaned, why = _orphaned(path)
            if orphaned:
                os.remove(path)
        except FileNotFoundError:  # renamed into place, or another rank's
            continue
        if orphaned:
            removed.append(path)
        if logger is not None:
            logger.warning(f'{"Removed" if orphaned else "Kept"} {path}, '
                           f'a temporary checkpoint file: {why}')
    return removed


# --- finding the checkpoint to resume from ----------------------------------

_STEP = re.compile(r'(epoch|iter)_(\d+)\.pth$')


def is_complete(filename: str) -> bool:
    """Whether a checkpoint file is whole: a readable zip whose members all
    pass their CRC check (a truncated or torn write fails)."""
    try:
        with zipfile.ZipFile(filename) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _saved_step(filename: str, unit: str) -> int:
    """``meta[unit]`` of a checkpoint named without its step, read without
    its tensors (``mmap``); -1 if unreadable."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(
                filename, map_location='cpu', weights_only=True, mmap=True)
        step = checkpoint['meta'][unit]
    except Exception:  # torn, foreign or not ours: order by time alone
        return -1
    return step if isinstance(step, int) else -1


def newest_checkpoint(work_dir: str, logger=None) -> Optional[str]:
    """The newest complete training state in ``work_dir`` (or ``None`` if it
    holds no checkpoint); changes nothing.

    Ordered by the step in the file name (``epoch_N``/``iter_N``; other
    names by the ``meta`` epoch or iteration they saved), then by time.
    ``last_checkpoint`` only adds its file to the candidates: a kill between
    a checkpoint's rename and the pointer's update leaves it one behind.
    ``best_*.pth`` holds no optimizer state and is not a training state.
    Incomplete files are skipped with a warning.

    Raises:
        RuntimeError: checkpoints exist but none is complete.
    """

    def warn(msg):
        if logger is not None:
            logger.warning(msg)

    candidates = {}
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        if not osp.basename(path).startswith('best_'):
            candidates[_key(path)] = path
    pointer, named = osp.join(work_dir, 'last_checkpoint'), None
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last and not osp.isfile(last):
            warn(f'{pointer} names {last}, which does not exist')
        elif last:
            named = _key(last)
            candidates.setdefault(named, last)
    steps = {p: _STEP.search(osp.basename(p)) for p in candidates.values()}
    unit = 'epoch' if any(m and m.group(1) == 'epoch'
                          for m in steps.values()) else 'iter'

    def order(path):
        match = steps[path]
        step = int(match.group(2)) if match else _saved_step(path, unit)
        return step, _key(path) == named, osp.getmtime(path)

    incomplete = []
    for path in sorted(candidates.values(), key=order, reverse=True):
        if is_complete(path):
            return path
        incomplete.append(path)
        warn(f'{path} is incomplete (a truncated write?); trying the '
             'previous checkpoint')
    if incomplete:
        raise RuntimeError(
            f'every checkpoint in {work_dir} is incomplete ({incomplete}); '
            'move them away to start from scratch')
    return None


def find_resume_checkpoint(work_dir: str, logger=None) -> Optional[str]:
    """:func:`newest_checkpoint` of ``work_dir``, after removing the
    temporary files of interrupted saves.

    mmengine only follows ``last_checkpoint``; without it, it silently
    starts from scratch and overwrites what is there.
    """
    remove_orphaned_temp_files(work_dir, logger)
    return newest_checkpoint(work_dir, logger)
