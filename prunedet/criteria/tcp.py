"""TCP: transfer channel pruning (Yu, Wang, Chen & Wu, IJCNN 2019).

TCP ranks the channels of a trained adaptation model by the first-order
Taylor estimate of the change of the *transfer* loss (source cross-entropy +
MMD) when the channel is removed, ``|mean(H * dL/dH)|`` on each layer's
output (Molchanov et al. 2017), and prunes the weakest across layers before
fine-tuning. What makes it "transfer" channel evaluation, as in the public
code (``code/deep/TCP/finetune.py``):

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
"""
import torch

from prunedet.pruning.groups import ChannelGroup
from prunedet.registry import CRITERIA
from .activation import TaylorActivation


@CRITERIA.register_module()
class TCP(TaylorActivation):
    """Args:
        domains: equal parts of each training batch scored separately.
        decay: weight of the past in the moving average (1: a plain sum).
    """

    def __init__(self, domains: int = 2, decay: float = 0.99):
        super().__init__()
        if domains < 1 or not 0. < decay <= 1.:
            raise ValueError('TCP needs domains >= 1 and 0 < decay <= 1')
        self.domains = domains
        self.decay = decay

    def batch_score(self, taylor: torch.Tensor) -> torch.Tensor:
        """(domains, C): the Taylor score of each domain's part."""
        if taylor.size(0) % self.domains:
            raise ValueError(
                f'TCP(domains={self.domains}) expects batches made of '
                f'{self.domains} equal parts (source, target), got '
                f'{taylor.size(0)} samples')
        parts = taylor.abs().unflatten(0, (self.domains, -1))
        return parts.mean(1)

    def _accumulate(self, name: str, value: torch.Tensor) -> None:
        prev = self.scores.get(name)
        if prev is not None:
            self.scores[name] = prev * self.decay
        super()._accumulate(name, value)

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        score = self.scores.get(group.name)
        if score is None or score.shape[-1] != group.num_channels:
            return torch.zeros(group.num_channels)
        score = score.cpu()
        score = score / score.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return score.min(0).values
