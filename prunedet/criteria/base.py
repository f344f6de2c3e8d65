"""What a pruning criterion is: one score per channel of a group.

Like Torch-Pruning's importance classes, a criterion is a callable,
``criterion(group) -> Tensor[num_channels]``, higher meaning more important.
Data-driven criteria also gather statistics while the network trains, and
only from optimizer steps that really happen:

* gradient criteria (``uses_gradients``) read ``.grad`` in :meth:`measure`;
* activation criteria install forward hooks in :meth:`attach` and
  :meth:`observe` per-batch values during the backward pass.

The hook calls :meth:`commit` right before each optimizer step (after a loss
scaler has unscaled the gradients; a step the scaler skips never calls it)
and :meth:`discard` after an iteration whose step did not happen. A commit
divides what the backward pass saw by the loss scale (so AMP's scaling never
reaches the scores) and is dropped, not accumulated, if anything in it is not
finite. Statistics accumulate between pruning steps, are cleared by
:meth:`reset` after each step and live in :meth:`state_dict`.
"""
from typing import Dict, Iterable, Optional

import torch
import torch.nn as nn

from prunedet.pruning.groups import ChannelGroup


class BaseCriterion:
    uses_gradients = False
    uses_activations = False

    def __init__(self):
        self.scores: Dict[str, torch.Tensor] = {}
        self._pending: Dict[str, torch.Tensor] = {}
        self.num_updates = 0  # committed steps since the last reset
        self.num_skipped = 0  # steps dropped for non-finite values

    @property
    def needs_statistics(self) -> bool:
        """Whether scores come from training steps (no steps: no scores)."""
        return self.uses_gradients or self.uses_activations

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        raise NotImplementedError

    def attach(self, groups: Iterable[ChannelGroup],
               model: Optional[nn.Module] = None) -> None:
        """Start observing ``model`` (after every change of its groups)."""

    def detach(self) -> None:
        """Stop observing the model."""

    def measure(self, groups: Iterable[ChannelGroup]) -> Dict[str, torch.Tensor]:
        """This step's values per group, from the parameters' gradients."""
        return {}

    def observe(self, group: ChannelGroup, value: torch.Tensor) -> None:
        """Buffer a value seen during the backward pass (scaled like the
        loss) until the step commits or discards it."""
        value = value.detach().float()
        prev = self._pending.get(group.name)
        if prev is not None and prev.shape == value.shape:
            value = prev + value
        self._pending[group.name] = value

    def commit(self, groups: Iterable[ChannelGroup],
               loss_scale: float = 1.) -> bool:
        """Accumulate this step's statistics; ``False`` if dropped because a
        value was not finite."""
        values = self.measure(groups)
        for name, v in self._pending.items():
            values[name] = v / loss_scale
        self._pending = {}
        if not values:
            return True
        if not all(bool(torch.isfinite(v).all()) for v in values.values()):
            self.num_skipped += 1
            return False
        for name, v in values.items():
            self._accumulate(name, v)
        self.num_updates += 1
        return True

    def discard(self) -> None:
        """Forget what a step that did not happen observed."""
        self._pending = {}

    def reset(self) -> None:
        self.scores.clear()
        self._pending = {}
        self.num_updates = 0

    def _accumulate(self, name: str, value: torch.Tensor) -> None:
        prev = self.scores.get(name)
        if prev is not None and prev.shape == value.shape:
            value = prev + value
        self.scores[name] = value

    def accumulated(self, group: ChannelGroup) -> torch.Tensor:
        """The statistics gathered since the last reset (zeros if none)."""
        score = self.scores.get(group.name)
        if score is None or score.shape[-1] != group.num_channels:
            return torch.zeros(group.num_channels)
        return score.cpu()

    def state_dict(self) -> dict:
        return {
            'scores': {k: v.cpu()
                       for k, v in self.scores.items()},
            'num_updates': self.num_updates,
            'num_skipped': self.num_skipped,
        }

    def load_state_dict(self, state: dict) -> None:
        self.scores = dict(state.get('scores', {}))
        self.num_updates = state.get('num_updates', len(self.scores) > 0)
        self.num_skipped = state.get('num_skipped', 0)
