"""How the pruned ratio rises from 0 to the target while training runs.

Pruning steps happen every ``interval`` epochs (PGP) or iterations (RPGP)
after ``begin`` and up to ``end``; the step at ``end`` reaches the target.
With ``p`` the fraction of the pruning window done, the pruned ratio is

* ``linear``: ``target * p``;
* ``geometric`` (PGP): kept channels decay by a constant factor per step,
  ``keep = C * exp(-decay * step)`` with ``decay = ln(1 / (1 - target)) / E``,
  i.e. ``1 - (1 - target) ** p``;
* ``exponential`` (PSFP): ``a * exp(-k p) + b`` with ``R(0) = 0``,
  ``R(1) = target`` and three quarters of the target reached at ``p = 1/4``:
  prune fast while the network is still plastic, then slowly.
"""
import math
from dataclasses import dataclass
from typing import Optional, Union

RAMPS = ('linear', 'geometric', 'exponential')


def _solve_psfp_k() -> float:
    """k with (1 - exp(-k/4)) / (1 - exp(-k)) = 3/4 (bisection)."""
    lo, hi = 1e-6, 50.
    for _ in range(100):
        k = (lo + hi) / 2
        if (1 - math.exp(-k / 4)) / (1 - math.exp(-k)) < 0.75:
            lo = k
        else:
            hi = k
    return (lo + hi) / 2


_PSFP_K = _solve_psfp_k()


def ramp(kind: str, progress: float, target: float) -> float:
    """Pruned ratio after ``progress`` (0..1) of the pruning window."""
    p = min(max(progress, 0.), 1.)
    if kind == 'linear':
        return target * p
    if kind == 'geometric':
        return 1. - (1. - target)**p
    if kind == 'exponential':
        return target * (1. - math.exp(-_PSFP_K * p)) / (
            1. - math.exp(-_PSFP_K))
    raise ValueError(f'unknown ramp {kind!r}, choose from {RAMPS}')


@dataclass
class PruningSchedule:
    """When to prune, and how much.

    ``begin``/``end`` count finished epochs (``by_epoch``) or iterations; a
    float in [0, 1] is a fraction of training instead, and ``end=None`` the
    end of training (resolved by :meth:`bind`). ``interval=None`` prunes once,
    at ``end`` (train, prune, fine-tune).
    """
    target: float
    begin: Union[int, float] = 0
    end: Union[int, float, None] = None
    interval: Optional[int] = 1
    kind: str = 'geometric'

    def __post_init__(self):
        if not 0. <= self.target < 1.:
            raise ValueError(
                f'target ratio must be in [0, 1), got {self.target}')
        if self.kind not in RAMPS:
            raise ValueError(
                f'unknown ramp {self.kind!r}, choose from {RAMPS}')
        if self.interval is not None and self.interval < 1:
            raise ValueError(f'interval must be >= 1, got {self.interval}')
        for name in ('begin', 'end'):
            value = getattr(self, name)
            if isinstance(value, float) and not 0. <= value <= 1.:
                raise ValueError(f'{name} as a fraction of training must be '
                                 f'in [0, 1], got {value}')
            if value is not None and value < 0:
                raise ValueError(f'{name} must be >= 0, got {value}')

    def bind(self, last: int) -> None:
        """Resolve fractions against the training length ``last`` and check
        the window."""

        def resolve(value):
            if isinstance(value, float):
                return int(round(value * last))
            return last if value is None else value

        self.begin, self.end = resolve(self.begin), resolve(self.end)
        if not self.begin < self.end <= last:
            raise ValueError(
                f'pruning window (begin={self.begin}, end={self.end}) must '
                f'satisfy begin < end <= {last}, the length of training')

    def is_step(self, done: int) -> bool:
        """Whether a pruning step follows ``done`` finished epochs/iters."""
        if not self.begin < done <= self.end:
            return False
        if done == self.end:
            return True
        return self.interval is not None and (done -
                                              self.begin) % self.interval == 0

    def is_last(self, done: int) -> bool:
        return done == self.end

    def ratio(self, done: int) -> float:
        if self.interval is None:
            return self.target
        progress = (done - self.begin) / (self.end - self.begin)
        return ramp(self.kind, progress, self.target)

    @property
    def num_steps(self) -> int:
        if self.interval is None:
            return 1
        span = self.end - self.begin
        return span // self.interval + (span % self.interval != 0)
