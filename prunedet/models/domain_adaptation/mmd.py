"""Multi-kernel maximum mean discrepancy (MK-MMD), as in DAN (Long et al.
2015).

The kernel is a sum of Gaussians whose bandwidths are ``kernel_mul`` apart
and centred (geometrically) on the mean pairwise squared distance of the
batch, so the loss adapts to the feature scale as training changes it. The
bandwidth is a statistic of the batch, not a path for gradients: it is
detached, as in the public DAN/TCP code.

The estimate is the quadratic-time, biased one (a V-statistic): it is the
squared distance between the two batches' mean embeddings, so it is never
negative and exactly zero when the batches are identical. DAN's linear-time
estimate is unbiased but noisy and can go negative; batches of a few dozen
samples make the quadratic one cheap.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS


def mk_mmd(source: torch.Tensor,
           target: torch.Tensor,
           kernel_mul: float = 2.,
           kernel_num: int = 5,
           bandwidth: Optional[float] = None) -> torch.Tensor:
    """MK-MMD² between ``source`` (N, D) and ``target`` (M, D) features.

    Args:
        kernel_mul: ratio between consecutive bandwidths.
        kernel_num: number of Gaussian kernels.
        bandwidth: the middle bandwidth; default: the mean squared distance
            between distinct samples of the joint batch.
    """
    n = source.size(0)
    total = torch.cat([source, target]).flatten(1)
    # explicit differences: exact and symmetric, unlike the matmul shortcut
    dist = (total[:, None] - total[None]).pow(2).sum(-1)
    if bandwidth is None:
        m = total.size(0)
        bandwidth = dist.detach().sum() / max(m * m - m, 1)
    base = torch.as_tensor(bandwidth, dtype=dist.dtype, device=dist.device)
    base = (base / kernel_mul**(kernel_num // 2)).clamp_min(1e-12)
    kernel = sum(
        torch.exp(-dist / (base * kernel_mul**i)) for i in range(kernel_num))
    xx, yy = kernel[:n, :n].mean(), kernel[n:, n:].mean()
    xy = kernel[:n, n:].mean()
    return xx + yy - 2 * xy


@MODELS.register_module()
class MKMMDLoss(nn.Module):
    """:func:`mk_mmd` as a loss module (see there for the arguments)."""

    def __init__(self,
                 kernel_mul: float = 2.,
                 kernel_num: int = 5,
                 bandwidth: Optional[float] = None):
        super().__init__()
        self.kernel_mul = kernel_mul
        self.kernel_num = kernel_num
        self.bandwidth = bandwidth

    def forward(self, source: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
        return mk_mmd(source, target, self.kernel_mul, self.kernel_num,
                      self.bandwidth)
