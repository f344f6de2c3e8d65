"""Notice an MMD collapse while it happens, and say so in the log.

MMD has a trivial minimiser: a constant feature (e.g. a bottleneck whose
ReLUs all died) has zero discrepancy between any two domains. From scratch,
with the MMD weighed in before the source cross-entropy has shaped the
features, training can fall into it; the classifier then sees the same
input for every image and stays at chance, and since dead ReLUs get no
gradient it does not come back. The loss curve hides it (the MMD term looks
perfectly minimised). This hook reads what :class:`MMDClassifier` logs each
iteration, the variance of the adapted features over the batch
(``feat_var``) and the MMD (``mmd``), and warns when the variance has fallen
to a tiny fraction of the largest seen in the run (or to zero) for
``patience`` iterations in a row.
"""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class CollapseGuardHook(Hook):
    """Args:
        var_ratio: collapsed when ``feat_var <= var_ratio * peak`` (``peak``:
            the largest ``feat_var`` so far) ...
        min_var: ... or when ``feat_var <= min_var``.
        patience: consecutive collapsed iterations before the warning.
        stop_training: also end training when it fires.
    """
    priority = 'LOW'

    def __init__(self,
                 var_ratio: float = 1e-3,
                 min_var: float = 1e-10,
                 patience: int = 20,
                 stop_training: bool = False):
        if not 0. <= var_ratio < 1. or min_var < 0. or patience < 1:
            raise ValueError('CollapseGuardHook needs 0 <= var_ratio < 1, '
                             'min_var >= 0 and patience >= 1')
        self.var_ratio = var_ratio
        self.min_var = min_var
        self.patience = patience
        self.stop_training = stop_training
        self.peak = 0.
        self.streak = 0  # consecutive collapsed iterations
        self.collapsed_at: Optional[int] = None  # iteration of the warning

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'feat_var' not in outputs:
            return  # not an MMD model (e.g. source-only): nothing to guard
        var = float(outputs['feat_var'])
        mmd = float(outputs.get('mmd', math.nan))
        if not math.isfinite(var):
            return
        self.peak = max(self.peak, var)
        threshold = max(self.min_var, self.var_ratio * self.peak)
        if self.collapsed_at is not None:
            threshold *= 10  # recovered: clearly above, not hovering
        if var > threshold:
            if self.collapsed_at is not None:
                runner.logger.info(
                    f'CollapseGuardHook: the adapted features vary again at '
                    f'iteration {runner.iter + 1} (feat_var {var:.3g})')
            self.streak, self.collapsed_at = 0, None
            return
        self.streak += 1
        if self.streak < self.patience or self.collapsed_at is not None:
            return
        self.collapsed_at = runner.iter + 1
        runner.logger.warning(
            f'CollapseGuardHook: the adapted features have collapsed at '
            f'iteration {self.collapsed_at}: their variance over the batch '
            f'is {var:.3g} (peak {self.peak:.3g}) for {self.streak} '
            f'iterations and the MMD is {mmd:.3g}. A constant feature has '
            'zero MMD (a near-constant one makes it trivial to minimise) but '
            'carries no class information: the model is at chance, and '
            'pruning scores from now on are meaningless. Use a longer '
            'warm-up (model.warmup_iters), a smaller model.mmd_weight, or '
            'start from source-trained weights.')
        if self.stop_training:
            runner.train_loop.stop_training = True
            runner.logger.warning('CollapseGuardHook: training stopped')

    def state_dict(self) -> dict:
        return dict(peak=self.peak, streak=self.streak,
                    collapsed_at=self.collapsed_at)

    def load_state_dict(self, state: dict) -> None:
        self.peak = float(state['peak'])
        self.streak = int(state['streak'])
        self.collapsed_at = state['collapsed_at']

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['collapse_guard'] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'collapse_guard' in checkpoint:
            self.load_state_dict(checkpoint['collapse_guard'])
