"""A time budget for building the channel graph.

Torch-Pruning's tracing and grouping are plain Python loops; on a model whose
coupling they cannot resolve they may run for hours (a channel shuffle once
kept ShuffleNet busy for more than ten minutes without a word). A watchdog
thread raises :class:`GraphBuildTimeout` in the building thread when the
budget is spent, so the user gets an error naming where it stuck instead of
a silent hang. The exception is delivered between Python bytecodes, which is
where such loops spend their time.
"""
import ctypes
import sys
import threading
from types import FrameType
from typing import Callable, Optional


class GraphBuildTimeout(TimeoutError):
    """The channel graph was not built within its time budget."""


class _Interrupt(BaseException):
    """Raised asynchronously in the building thread (a BaseException, so
    that no ``except Exception`` on the way swallows it)."""


def _raise_in(thread_id: int, exc: Optional[type]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id),
        ctypes.py_object(exc) if exc is not None else ctypes.c_void_p(0))


class time_budget:
    """``with time_budget(seconds, where, what):`` raises
    :class:`GraphBuildTimeout` when the block runs longer than ``seconds``;
    ``where(frame)`` says what the block is doing at that moment (``frame``:
    the building thread's innermost frame). ``None`` or a non-positive budget
    disables the watchdog."""

    def __init__(self, seconds: Optional[float],
                 where: Callable[[Optional[FrameType]], str],
                 what: str = 'the channel graph'):
        self.seconds = seconds
        self.where = where
        self.what = what
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._fired = False

    def __enter__(self):
        if self.seconds is None or self.seconds <= 0:
            return self
        self._thread_id = threading.get_ident()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()
        return self

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        with self._lock:
            if not self._done.is_set():
                self._fired = True
                frame = sys._current_frames().get(self._thread_id)
                self._stuck_at = self.where(frame)
                _raise_in(self._thread_id, _Interrupt)

    def __exit__(self, exc_type, exc, tb):
        if self.seconds is None or self.seconds <= 0:
            return False
        with self._lock:
            self._done.set()
            if self._fired and exc_type is not _Interrupt:
                _raise_in(self._thread_id, None)  # not delivered yet: drop
        self._watchdog.join()
        if exc_type is _Interrupt:
            raise GraphBuildTimeout(
                f'building {self.what} took more than {self.seconds:g} s and '
                f'was stopped while {self._stuck_at}. Exclude that module '
                '(skip=[...] or a narrower prunable=[...]) or give the graph '
                'more time (graph_timeout).') from None
        return False
