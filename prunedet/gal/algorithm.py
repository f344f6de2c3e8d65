"""GAL as an mmengine model: the student, its frozen baseline, a
discriminator and the soft masks, trained by one ``train_step``.

Lin et al. (CVPR 2019) train a masked copy of the baseline (the student,
i.e. the generator) to produce the baseline's logits without labels: the
data term ``miu * MSE(teacher, student)``, an adversarial term from a
discriminator that tells the two apart, and ``lambda * ||m||_1`` on the
masks, solved by FISTA (:mod:`.fista`; the L1 term lives in its prox).
Each iteration (the paper's k1 = k2 = 1):

1. the discriminator steps on ``BCE(D(t), 1) + BCE(D(s), 0) + BCE(D(s), 1)``
   (the last term is the adversarial regularisation that keeps it from
   winning outright), ``s`` the student's logits on the clean input;
2. the student's weights (SGD) and, every ``mask_interval`` iterations, the
   masks (FISTA, gradient at its extrapolated point) step on
   ``miu * MSE(t, s) + BCE(D(s), 1)``, the discriminator frozen, ``s`` the
   student's logits on the input with the noise (dropout) applied: the paper
   puts the noise in the pruned network's update only. With noise, the
   clean logits take one more forward pass (without gradients; its batch
   statistics also reach the BN running averages).

The class is an mmpretrain ``ImageClassifier`` (the student's modules keep
their names) with ``teacher``, ``discriminator``, ``masks`` and ``noise``
beside them. ``load_from`` a trained baseline fills student and teacher
alike; validation scores the masked student. :meth:`GAL.release_masks`
(called by :class:`~prunedet.engine.hooks.GALRemovalHook` at the end)
leaves the modules of a plain classifier.

Where the public code differs, the paper is followed: the teacher is frozen
and in eval mode (the code trains its BN statistics and last layer), the
discriminator has ReLUs and its logits go once through the sigmoid of
BCE-with-logits, dropout on the student's input is the noise
(``noise_dropout``; absent in the code), the gradient of the masks is taken
at FISTA's extrapolated point and L1 is applied once.
"""
import copy
import math
import numbers
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import OptimWrapperDict
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from .fista import FISTA
from .masks import SoftMasks

# modules of the GAL model that are not the student's
GAL_MODULES = ('teacher', 'discriminator', 'masks', 'noise')
OPTIM_PARTS = ('student', 'discriminator', 'masks')


class InputDropout(nn.Module):
    """Dropout on the student's input, GAL's noise. It draws from a
    generator of its own whose state is saved with the model, so that a
    resumed run draws what the uninterrupted one would have."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        seed = int(torch.randint(0, 2**62, (), dtype=torch.long))
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def active(self) -> bool:
        return self.training and self.p > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        keep = torch.rand(x.shape, generator=self.generator) >= self.p
        return x * keep.to(x.device, x.dtype) / (1. - self.p)

    def get_extra_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def _check(name: str, value, low: float, high: Optional[float] = None,
           integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or \
            not math.isfinite(value) or value < low or \
            (high is not None and value >= high):
        bound = f'in [{low}, {high})' if high is not None else f'>= {low}'
        raise ValueError(f'GAL: {name} must be '
                         f'{"an integer" if integer else "a number"} '
                         f'{bound}, got {value!r}')


@MODELS.register_module()
class GAL(ImageClassifier):
    """Generative adversarial learning of a masked student.

    Args:
        backbone, neck, head: the classifier (student and teacher alike).
        structures: what the masks scale, see
            :class:`~prunedet.gal.masks.SoftMasks`.
        discriminator: its config (default ``GALDiscriminator`` on the
            logits).
        miu: weight of the data term ``MSE(teacher, student)``.
        noise_dropout: dropout ratio on the student's input (the paper:
            0.1); 0 turns it off.
        mask_interval: the masks step every this many iterations (the
            paper: 1; the public code: 200).
        mask_init: ``'normal'`` (N(0, 1), the public code), ``'uniform'``
            (U(0, 1)) or ``'ones'`` (the student starts as the baseline).
        Others: as for ``ImageClassifier``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 *,
                 structures: Sequence[dict],
                 discriminator: Optional[dict] = None,
                 miu: float = 1.,
                 noise_dropout: float = 0.,
                 mask_interval: int = 1,
                 mask_init: str = 'normal',
                 **kwargs):
        _check('miu', miu, 0.)
        _check('noise_dropout', noise_dropout, 0., 1.)
        _check('mask_interval', mask_interval, 1, integer=True)
        teacher = dict(
            type='ImageClassifier',
            backbone=copy.deepcopy(backbone),
            neck=copy.deepcopy(neck),
            head=copy.deepcopy(head))
        super().__init__(backbone, neck, head, **kwargs)
        self.miu = float(miu)
        self.mask_interval = int(mask_interval)
        self.masks = SoftMasks(self, structures, mask_init)
        self.teacher = MODELS.build(teacher).requires_grad_(False).eval()
        discriminator = dict(discriminator or dict(type='GALDiscriminator'))
        if 'in_features' not in discriminator:
            discriminator['in_features'] = self._num_classes()
        self.discriminator = MODELS.build(discriminator)
        self.noise = InputDropout(float(noise_dropout))
        self.masks.attach(self)
        self._register_load_state_dict_pre_hook(
            self._teacher_from_baseline, with_module=True)

    def _num_classes(self) -> int:
        for part in (getattr(self, 'head', None), self.backbone):
            classes = getattr(part, 'num_classes', None)
            if isinstance(classes, int) and classes > 0:
                return classes
        raise ValueError('GAL: give discriminator.in_features (neither the '
                         'head nor the backbone says how many classes)')

    @property
    def has_gal(self) -> bool:
        """False once the masks are released (a plain classifier)."""
        return hasattr(self, 'masks')

    def train(self, mode: bool = True):
        super().train(mode)
        if hasattr(self, 'teacher'):
            self.teacher.eval()  # frozen: BN statistics stay the baseline's
        return self

    @staticmethod
    def _teacher_from_baseline(module, state_dict, prefix, *args) -> None:
        """A state dict without ``teacher.*`` is the baseline's (load_from):
        the teacher gets the same weights as the student."""
        if not module.has_gal:
            return
        teacher = prefix + 'teacher.'
        if any(k.startswith(teacher) for k in state_dict):
            return
        for key, own in module.teacher.state_dict().items():
            value = state_dict.get(prefix + key)
            if value is None:
                continue
            if value.shape != own.shape:
                raise ValueError(
                    f'GAL: the baseline checkpoint has {key} of shape '
                    f'{tuple(value.shape)}, the teacher {tuple(own.shape)}; '
                    'the teacher is the unpruned model of this config')
            state_dict[teacher + key] = value

    def optim_parts(self) -> Dict[str, nn.Module]:
        """The modules each optimizer wrapper steps (``student``: the
        classifier's own layers)."""
        student = nn.ModuleDict({
            n: m
            for n, m in self.named_children() if n not in GAL_MODULES
        })
        return dict(
            student=student, discriminator=self.discriminator,
            masks=self.masks)

    def student_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return super().forward(inputs, mode='tensor')

    def train_step(self, data, optim_wrapper: OptimWrapperDict
                   ) -> Dict[str, torch.Tensor]:
        if not self.has_gal:
            raise RuntimeError('GAL: the masks were released (the pruned '
                               'model is a plain classifier); fine-tune it '
                               'with a classifier config')
        student_optim, d_optim, mask_optim = (
            optim_wrapper[k] for k in OPTIM_PARTS)
        fista = mask_optim.optimizer
        if not isinstance(fista, FISTA):
            raise TypeError(f'GAL: the masks need FISTA, got '
                            f'{type(fista).__name__}')
        data = self.data_preprocessor(data, True)
        inputs = data['inputs']
        with torch.no_grad():
            teacher = self.teacher(inputs, mode='tensor')
        update_masks = (int(self.masks.steps) + 1) % self.mask_interval == 0
        if update_masks:
            fista.extrapolate()  # the gradient is taken at y_k
        student = self.student_logits(self.noise(inputs))
        if self.noise.active:
            # the noise is the pruned network's, in its own update only:
            # the discriminator learns from the student on the clean input
            with torch.no_grad():
                clean = self.student_logits(inputs)
        else:
            clean = student.detach()

        real, fake = self.discriminator(teacher), self.discriminator(clean)
        loss_d = _bce(real, 1.) + _bce(fake, 0.) + _bce(fake, 1.)
        d_optim.update_params(loss_d)

        self.discriminator.requires_grad_(False)
        try:
            loss_adv = _bce(self.discriminator(student), 1.)
        finally:
            self.discriminator.requires_grad_(True)
        loss_data = self.miu * F.mse_loss(student, teacher)
        student_optim.update_params(loss_data + loss_adv)
        if update_masks:
            mask_optim.step()
        mask_optim.zero_grad()
        self.masks.steps += 1

        with torch.no_grad():
            sparsity = fista.param_groups[0]['sparsity']
            loss_sparse = sparsity * self.masks.l1()
        log = dict(
            loss=(loss_data + loss_adv).detach() + loss_sparse,
            loss_data=loss_data.detach(),
            loss_adv=loss_adv.detach(),
            loss_sparse=loss_sparse,
            loss_d=loss_d.detach())
        for kind, zeros in self.masks.zero_counts().items():
            log[f'zero_{kind}s'] = torch.tensor(float(zeros))
        return log

    def release_masks(self) -> SoftMasks:
        """End GAL: unhook and return the masks and drop the teacher,
        discriminator and noise, leaving a plain classifier's modules."""
        masks = self.masks
        masks.detach(self)
        for name in GAL_MODULES:
            delattr(self, name)
        return masks

    def mask_summary(self) -> List[str]:
        """'filters 12/40 at zero', ... per kind."""
        zeros, sizes = self.masks.zero_counts(), self.masks.sizes()
        return [f'{kind}s {zeros[kind]}/{sizes[kind]}' for kind in sizes]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, target))
