"""GAL's end inside the Runner: remove what the masks switched off.

GAL trains with mmengine's own loops (its model has its own ``train_step``);
this hook checks the set-up before training, logs the masks at zero after
each epoch, and after the last one removes the structures whose mask is
exactly 0 (:func:`prunedet.gal.remove_masked_structures`), before the
checkpoint hook saves: the last checkpoint holds the plain pruned classifier
with its architecture recorded, and the validation that follows scores it
(the error before fine-tuning).
"""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from prunedet.engine.runner_model import unwrap
from prunedet.gal import GAL, check_removal, remove_masked_structures
from prunedet.pruning.flops import count_params, measure_flops
from prunedet.pruning.tracing import trace_forward

from .pruning_stage import check_pruning_stage

META_KEY = 'gal'


@HOOKS.register_module()
class GALRemovalHook(Hook):
    """Args:
        check: at the first iteration, before any update, remove structures
            from a copy of the model whose masks are set to a pattern of
            zeros: a mask that cannot be removed exactly fails then, not at
            the end of training.
        samples: training samples (of the first batch) on which the pruned
            model must give the masked student's outputs.
    """

    priority = 'NORMAL'  # before SafeCheckpointHook (VERY_LOW) saves

    def __init__(self, check: bool = True, samples: int = 8):
        if not isinstance(samples, int) or isinstance(samples, bool) or \
                samples < 2:
            raise ValueError(f'GALRemovalHook: samples must be an integer '
                             f'>= 2, got {samples!r}')
        self.check = check
        self.samples = samples
        self.inputs: Optional[torch.Tensor] = None
        self.result: Optional[dict] = None

    def _model(self, runner):
        model = unwrap(runner.model)
        if not isinstance(model, GAL):
            raise TypeError('GALRemovalHook removes the structures of a GAL '
                            f'model, not of {type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if not model.has_gal:
            raise RuntimeError('GAL: this model was pruned already')
        check_pruning_stage(
            runner, 'GAL',
            'the trained baseline (the teacher, and the student\'s start)',
            'its train step and the removal are not distributed')
        runner.logger.info('GAL: masks at zero: ' +
                           ', '.join(model.mask_summary()))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.inputs is not None or data_batch is None:
            return
        model = self._model(runner)
        with torch.no_grad():
            inputs = model.data_preprocessor(data_batch, False)['inputs']
        self.inputs = inputs[:self.samples].detach().clone()
        if len(self.inputs) < 2:
            raise ValueError('GAL: the first training batch has fewer than 2 '
                             'samples to check the removal on')
        if self.check:
            trial = check_removal(model, self.inputs)
            runner.logger.info('GAL: removal checked on a copy with a '
                               'pattern of zero masks: ' +
                               '; '.join(trial.lines()))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop) and \
                self.is_last_train_iter(runner):
            self._remove(runner)

    def after_train_epoch(self, runner) -> None:
        model = self._model(runner)
        if not model.has_gal:
            return
        runner.logger.info(f'GAL epoch {runner.epoch + 1}: masks at zero: '
                           f'{", ".join(model.mask_summary())}')
        if not isinstance(runner.train_loop, IterBasedTrainLoop) and \
                self.is_last_train_epoch(runner):
            self._remove(runner)

    def _remove(self, runner) -> None:
        model = self._model(runner)
        if self.inputs is None:
            raise RuntimeError('GAL: no training batch was seen')
        was_training = model.training
        forward = trace_forward(model)
        flops, _ = measure_flops(model, self.inputs[:1], forward)
        params = count_params(model.optim_parts()['student'])
        student = runner.optim_wrapper['student'].optimizer
        summary = remove_masked_structures(model, self.inputs, [student])
        model.train(was_training)
        pruned_flops, _ = measure_flops(model, self.inputs[:1], forward)
        pruned_params = count_params(model)
        self.result = dict(
            summary.as_dict(),
            flops=[flops, pruned_flops],
            params=[params, pruned_params])
        runner.logger.info(
            f'GAL pruned: params {params} -> {pruned_params}, FLOPs {flops} '
            f'-> {pruned_flops} ({pruned_flops / flops:.1%}) at input '
            f'{tuple(self.inputs.shape[1:])}; ' + '; '.join(summary.lines()))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.result is not None:
            checkpoint.setdefault('meta', {})[META_KEY] = self.result

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if META_KEY in (checkpoint.get('meta') or {}):
            raise RuntimeError(
                'GAL: this checkpoint is GAL\'s pruned result, not a GAL '
                'training state; fine-tune it with the _finetune config '
                '(load_from) or evaluate it with tools/test.py and that '
                'config')
