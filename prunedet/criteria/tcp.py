"""TCP: transfer channel pruning (Yu, Wang, Chen & Wu, IJCNN 2019).

TCP ranks the channels of a trained adaptation model by the first-order
Taylor estimate of the change of the *transfer* loss (source cross-entropy +
MMD) when the channel is removed: per batch, ``|mean(a * dL/da)|`` over the
batch and the positions of the map ``a`` (taken where
:class:`~.activation.TaylorActivation` takes it), the absolute value of the
batch mean as in the public code (``code/deep/TCP/finetune.py``), not the
per-example one of Molchanov et al. It prunes the weakest across layers,
iteratively with fine-tuning in between (``configs/domain_adaptation/
_base_/tcp.py``). What makes it "transfer" channel evaluation, as in the
public code:

* the scores are computed on source and target samples separately and a
  channel counts as weak if it is weak for either domain (the minimum);
* each layer's scores are L2-normalised (per domain), so that layers of
  different sizes and gradient scales can be ranked together.

The activations and gradients come from the normal training pass, whose loss
is the model's full adaptation loss. :class:`~prunedet.models.MMDClassifier`
runs ``[source; target]`` as one batch, so the batch splits into ``domains``
equal parts. The public code overwrote the scores at every batch; here they
are an exponential moving average (``decay``), so the ranking reflects the
trained network rather than the early iterations of the same run.

A layer whose statistics have faded (the average fell to ``fade`` of its
peak in a domain: its recent Taylor terms are zero, e.g. dead units after an
MMD collapse) scores zero there instead of being normalised back to unit
scale, so the pruner keeps it with a warning rather than ranking it by what
was left of the time before it died.
"""
from typing import Dict

import torch

from prunedet.pruning.groups import ChannelGroup
from prunedet.registry import CRITERIA
from .activation import TaylorActivation


@CRITERIA.register_module()
class TCP(TaylorActivation):
    """Args:
        domains: equal parts of each training batch scored separately.
        decay: weight of the past in the moving average (1: a plain sum).
        fade: a layer whose average norm fell to this share of its peak
            (per domain) scores zero there.
    """

    def __init__(self,
                 domains: int = 2,
                 decay: float = 0.99,
                 fade: float = 1e-3):
        super().__init__()
        if domains < 1 or not 0. < decay <= 1. or not 0. <= fade < 1.:
            raise ValueError('TCP needs domains >= 1, 0 < decay <= 1 and '
                             '0 <= fade < 1')
        self.domains = domains
        self.decay = decay
        self.fade = fade
        self.peaks: Dict[str, torch.Tensor] = {}  # (domains,) largest norms

    def batch_score(self, taylor: torch.Tensor) -> torch.Tensor:
        """(domains, C): ``|batch mean|`` of each domain's part."""
        if taylor.size(0) % self.domains:
            raise ValueError(
                f'TCP(domains={self.domains}) expects batches made of '
                f'{self.domains} equal parts (source, target), got '
                f'{taylor.size(0)} samples')
        return taylor.unflatten(0, (self.domains, -1)).mean(1).abs()

    def _accumulate(self, name: str, value: torch.Tensor) -> None:
        prev = self.scores.get(name)
        if prev is not None:
            self.scores[name] = prev * self.decay
        super()._accumulate(name, value)
        norm = self.scores[name].norm(dim=-1)
        peak = self.peaks.get(name)
        self.peaks[name] = norm if peak is None or peak.shape != norm.shape \
            else torch.maximum(peak, norm)

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        score = self.scores.get(group.name)
        if score is None or score.shape[-1] != group.num_channels:
            return torch.zeros(group.num_channels)
        score = score.cpu()
        norm = score.norm(dim=-1, keepdim=True)
        peak = self.peaks.get(group.name)
        faded = norm <= self.fade * peak.cpu()[:, None] if peak is not None \
            else torch.zeros_like(norm, dtype=torch.bool)
        score = score / norm.clamp_min(1e-12)
        return score.masked_fill(faded, 0.).min(0).values

    def reset(self) -> None:
        super().reset()
        self.peaks.clear()

    def state_dict(self) -> dict:
        return dict(super().state_dict(),
                    peaks={k: v.cpu() for k, v in self.peaks.items()})

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.peaks = dict(state.get('peaks', {}))
