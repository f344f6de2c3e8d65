"""What a pruning criterion is: one score per channel of a group.

Like Torch-Pruning's importance classes, a criterion is a callable,
``criterion(group) -> Tensor[num_channels]``, higher meaning more important.
Data-driven criteria also collect statistics while the network trains:

* ``uses_gradients``: the hook calls :meth:`update` right before each
  optimizer step, while ``.grad`` still holds the step's gradients;
* :meth:`attach` lets a criterion install forward hooks (activations).

Statistics are accumulated between pruning steps and cleared by :meth:`reset`
after each step; they live in :meth:`state_dict`, so resuming keeps them.
"""
from typing import Dict, Iterable, Optional

import torch

from prunedet.pruning.groups import ChannelGroup


class BaseCriterion:
    uses_gradients = False

    def __init__(self):
        self.scores: Dict[str, torch.Tensor] = {}

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        raise NotImplementedError

    def attach(self, groups: Iterable[ChannelGroup]) -> None:
        """Start observing the model (after every change of its groups)."""

    def detach(self) -> None:
        """Stop observing the model."""

    def update(self, groups: Iterable[ChannelGroup]) -> None:
        """Accumulate statistics of the current step's gradients."""

    def reset(self) -> None:
        self.scores.clear()

    def _accumulate(self, group: ChannelGroup, value: torch.Tensor) -> None:
        value = value.detach().float()
        prev: Optional[torch.Tensor] = self.scores.get(group.name)
        if prev is not None and prev.shape == value.shape:
            value = prev + value
        self.scores[group.name] = value

    def accumulated(self, group: ChannelGroup) -> torch.Tensor:
        """The statistics gathered since the last reset (zeros if none)."""
        score = self.scores.get(group.name)
        if score is None or score.numel() != group.num_channels:
            return torch.zeros(group.num_channels)
        return score

    def state_dict(self) -> dict:
        return {'scores': {k: v.cpu() for k, v in self.scores.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.scores = dict(state.get('scores', {}))
