"""DCP's joint loss for the layer being pruned (stage 2).

    L(W) = mse_weight * MSE(O(W), O*) + ce_weight * CE(head_p, labels)

``O(W)`` is the layer's output in the network being pruned (whose earlier
layers are pruned already), ``O*`` the same layer's output in the unpruned
stage-1 network on the same images, and ``head_p`` the logits of the first
auxiliary head after the layer (the final classifier after the last point),
computed from the pruned network. The forward pass of the pruned network
stops at that head's point; the unpruned one stops at the layer.
"""
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .aux_classifier import DCPClassifier
from .features import capture, named, run_until

Batch = Tuple[torch.Tensor, torch.Tensor]  # preprocessed inputs, labels


def joint_loss(output: torch.Tensor, target: torch.Tensor,
               logits: torch.Tensor, labels: torch.Tensor, mse_weight: float,
               ce_weight: float) -> Dict[str, torch.Tensor]:
    """The reconstruction and discrimination terms and their weighted sum
    (the parts are logged unweighted)."""
    mse = F.mse_loss(output, target)
    ce = F.cross_entropy(logits, labels)
    return dict(
        loss=mse_weight * mse + ce_weight * ce,
        loss_mse=mse.detach(),
        loss_ce=ce.detach())


def layer_objective(model: DCPClassifier, original: nn.Module,
                    layer_name: str, point: Optional[int],
                    batches: Iterator[Batch], mse_weight: float,
                    ce_weight: float) -> Callable[[], Dict[str, torch.Tensor]]:
    """The joint loss of ``layer_name`` on the next batch, as a closure.

    Args:
        model: the network being pruned (gradients flow to the layer).
        original: the unpruned stage-1 network (same module names).
        point: index of the auxiliary head after the layer; ``None``: the
            final classifier.
        batches: yields preprocessed ``(inputs, labels)``.
    """
    (layer, ) = named(model, [layer_name], 'layer')
    (reference, ) = named(original, [layer_name], 'layer')
    if point is not None:
        (stop, ) = named(model, [model.aux_points[point]], 'aux point')

    def objective() -> Dict[str, torch.Tensor]:
        inputs, labels = next(batches)
        with torch.no_grad():
            target = run_until(reference,
                               lambda: original(inputs, mode='tensor'))
        with capture([layer]) as out:
            if point is None:
                logits = model(inputs, mode='tensor')
            else:
                feature = run_until(stop,
                                    lambda: model(inputs, mode='tensor'))
                logits = model.aux_logits(point, feature)
        return joint_loss(out[0], target, logits, labels, mse_weight,
                          ce_weight)

    return objective
