"""Data-free criteria: filter norms (Li et al. 2017; SFP/PSFP use L2)."""
import torch

from prunedet.pruning.groups import ChannelGroup, PRUNABLE_ROOTS
from prunedet.registry import CRITERIA
from .base import BaseCriterion


class _FilterNorm(BaseCriterion):
    """Norm of each channel's filter weights, summed over coupled producers
    (all convs tied by a residual add); norm layers are not counted."""
    p = 1

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        score = torch.zeros(group.num_channels)
        for s in group.producers:
            if isinstance(s.module, PRUNABLE_ROOTS) and s.name == 'weight':
                w = s.param.detach().float().pow(self.p)
                score += s.per_channel(w.abs(), group.num_channels).cpu()
        return score.pow(1. / self.p)


@CRITERIA.register_module()
class L1Norm(_FilterNorm):
    p = 1


@CRITERIA.register_module()
class L2Norm(_FilterNorm):
    p = 2


@CRITERIA.register_module()
class Random(BaseCriterion):
    """Uniform random scores: the sanity baseline every criterion must beat.

    Seeded per call count, so every distributed rank draws the same scores.
    """

    def __init__(self, seed: int = 0):
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        return torch.rand(group.num_channels, generator=self.generator)

    def state_dict(self) -> dict:
        return {'generator': self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if 'generator' in state:
            self.generator.set_state(state['generator'])
