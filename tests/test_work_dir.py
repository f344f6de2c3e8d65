"""A work dir shared by runs: live temporary files, the checkpoint resumed."""
import multiprocessing
import os
import os.path as osp
import signal
import socket
import tempfile
import time
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prunedet.engine.checkpoints import find_resume_checkpoint, write_atomic
from prunedet.engine.hooks import SafeCheckpointHook


class Log:
    """A logger that keeps its warnings."""

    def __init__(self):
        self.lines = []

    def warning(self, msg):
        self.lines.append(msg)

    info = warning


def _save_until(target, saved, go):
    """A run saving ``target``, stopped between writing its temporary file
    and the rename (whose name goes to ``saved``) until ``go`` is set, or
    killed there (``go=None``)."""
    replace = os.replace

    def held(src, dst):
        saved.put(src)
        if go is None:
            os.kill(os.getpid(), signal.SIGKILL)
        go.wait()
        replace(src, dst)

    os.replace = held
    write_atomic(b'epoch 1 of the first run', target)


def test_a_live_writers_temp_file_survives_a_second_run(tmp_path):
    work = str(tmp_path)
    fork = multiprocessing.get_context('fork')
    saved, go = fork.SimpleQueue(), fork.Event()
    live_writer = fork.Process(
        target=_save_until, args=(osp.join(work, 'epoch_1.pth'), saved, go))
    dead_writer = fork.Process(
        target=_save_until, args=(osp.join(work, 'epoch_7.pth'), saved, None))
    try:
        live_writer.start()
        live = saved.get()
        dead_writer.start()
        dead = saved.get()
        dead_writer.join()
        assert osp.isfile(live) and osp.isfile(dead)
        assert dead_writer.exitcode == -signal.SIGKILL
        other_host = osp.join(work, '.epoch_2.pth.x1.4242@elsewhere.tmp')
        own_pid = osp.join(work, f'.epoch_5.pth.w0.{os.getpid()}@'
                           f'{socket.gethostname()}.tmp')  # an earlier pid 1
        unnamed_recent = osp.join(work, '.epoch_3.pth.y2.tmp')
        unnamed_old = osp.join(work, '.epoch_4.pth.z3.tmp')
        for path in (other_host, own_pid, unnamed_recent, unnamed_old):
            open(path, 'wb').close()
        old = time.time() - 2 * 24 * 3600
        os.utime(unnamed_old, (old, old))

        # a second run starts in the same work dir: --resume, then the hook
        log = Log()
        assert find_resume_checkpoint(work, log) is None
        hook = SafeCheckpointHook(interval=1)
        hook.before_train(SimpleNamespace(work_dir=work, logger=log))

        assert osp.isfile(live), 'the live write was deleted'
        for path in (dead, own_pid, unnamed_old):
            assert not osp.exists(path)
        assert osp.isfile(other_host) and osp.isfile(unnamed_recent)
        text = '\n'.join(log.lines)
        assert f'pid {live_writer.pid}' in text and 'elsewhere' in text
        assert f'Removed {dead}' in text

        go.set()  # the first run finishes its save
        live_writer.join(timeout=60)
        assert live_writer.exitcode == 0
        with open(osp.join(work, 'epoch_1.pth'), 'rb') as f:
            assert f.read() == b'epoch 1 of the first run'
    finally:
        for writer in (live_writer, dead_writer):
            if writer.is_alive():
                writer.kill()
                writer.join()


def _save(path, step, complete=True):
    torch.save({'meta': {'epoch': step, 'iter': 4 * step},
                'state_dict': {'w': torch.full((3, ), float(step))}}, path)
    if not complete:
        with open(path, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    files=st.dictionaries(st.integers(1, 6), st.booleans(), max_size=5),
    template=st.sampled_from(['epoch_{}.pth', 'iter_{}.pth', 'model-{}.pth']),
    pointer=st.one_of(st.none(), st.integers(1, 9)),
    best=st.one_of(st.none(), st.integers(1, 6)),
    mtimes=st.randoms(use_true_random=False))
def test_resume_takes_the_newest_complete_checkpoint(files, template,
                                                     pointer, best, mtimes):
    """Whatever ``last_checkpoint`` says (missing, an older or a newer file,
    a file that is gone), whatever the files' times: the newest complete
    training state, never a best checkpoint (it holds no optimizer)."""
    with tempfile.TemporaryDirectory() as work:
        paths = {}
        for step, complete in files.items():
            paths[step] = osp.join(work, template.format(step))
            _save(paths[step], step, complete)
        if best is not None:
            _save(osp.join(work, 'best_acc_' + template.format(best)), best)
        for name in os.listdir(work):  # times that disagree with the steps
            stamp = 1e9 + mtimes.randint(0, 10**6)
            os.utime(osp.join(work, name), (stamp, stamp))
        if pointer is not None:
            with open(osp.join(work, 'last_checkpoint'), 'w') as f:
                f.write(osp.join(work, template.format(pointer)))
        complete = [s for s, ok in files.items() if ok]
        if complete:
            assert find_resume_checkpoint(work) == paths[max(complete)]
        elif files:
            with pytest.raises(RuntimeError, match='incomplete'):
                find_resume_checkpoint(work)
        else:
            assert find_resume_checkpoint(work) is None


def test_resume_skips_a_pointer_left_behind_by_a_kill(tmp_path):
    """Killed between renaming epoch_3.pth into place and updating the
    pointer: epoch_3 is complete and newer than what the pointer names."""
    work = str(tmp_path)
    for step in (1, 2, 3):
        _save(osp.join(work, f'epoch_{step}.pth'), step)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'epoch_2.pth'))
    assert find_resume_checkpoint(work) == osp.join(work, 'epoch_3.pth')
