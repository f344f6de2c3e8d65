"""Where a prune event spends its time, measured only when asked.

:meth:`~.pruner.ChannelPruner.step` and :func:`~.surgery.remove_channels`
take an optional ``timings`` dict; each phase adds its wall time under its
name. Without one (training), :func:`phase` does nothing but enter and leave
a context.
"""
import time
from contextlib import contextmanager
from typing import Dict, Optional

# in the order an event goes through them
PHASES = (
    'scoring',  # the criterion's scores (averaged over ranks)
    'planning',  # channels kept per group, which are selected (rank 0)
    'soft',  # soft pruning and the per-channel state of every group
    'graph',  # Torch-Pruning's group of the channels to remove
    'surgery',  # weights (and EMA copies) cut
    'optimizer',  # optimizer state cut and re-keyed
    'attributes',  # attributes mirroring channel counts set again
    'regroup',  # the groups of the cut model
)


@contextmanager
def phase(timings: Optional[Dict[str, float]], name: str):
    """Add the block's wall time to ``timings[name]`` (if ``timings``)."""
    if timings is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.) + time.perf_counter() - start
