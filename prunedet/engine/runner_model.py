"""The Runner's model after a reshape: optimizers, wrappers, checkpoints.

A hard prune (or a pruned checkpoint loaded into a fresh model) replaces
parameters. Everything the Runner built around the old ones has to follow:
the optimizer's param groups and state, and a distributed wrapper that
registered them. These helpers are shared by every hook that reshapes.
"""
from contextlib import contextmanager
from typing import List

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

from prunedet.pruning.architecture import (ARCH_KEY, record_architecture,
                                           restore_architecture)
from prunedet.pruning.record_schema import ArchitectureRecordError
from prunedet.pruning.surgery import forget_parameters, rebind_optimizer


def unwrap(model):
    return model.module if is_model_wrapper(model) else model


def optimizers(runner) -> List[torch.optim.Optimizer]:
    """The torch optimizers behind the runner's wrapper (none in test mode)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    if isinstance(wrapper, OptimWrapperDict):
        return [w.optimizer for w in wrapper.optim_wrappers.values()]
    if isinstance(wrapper, OptimWrapper):
        return [wrapper.optimizer]
    return []


def rewrap(runner) -> None:
    """A distributed wrapper registered the old parameters: wrap anew.

    ``Runner.wrap_model`` would also convert BN to SyncBN again, creating new
    module objects that the channel graph does not know; the model was
    converted when the Runner was built, so only the wrapper is rebuilt.
    """
    if not is_model_wrapper(runner.model):
        return
    module = runner.model.module
    sync_bn = runner.cfg.get('sync_bn')
    runner.cfg.sync_bn = None
    try:
        runner.model = runner.wrap_model(
            runner.cfg.get('model_wrapper_cfg'), module)
    finally:
        runner.cfg.sync_bn = sync_bn


def save_architecture(runner, checkpoint: dict) -> None:
    checkpoint[ARCH_KEY] = record_architecture(unwrap(runner.model))


def architecture_of(checkpoint: dict):
    """The architecture record of a checkpoint (``None``: unpruned)."""
    record = checkpoint.get(ARCH_KEY)
    if record is None and isinstance(checkpoint.get('pruning'), dict):
        legacy = checkpoint['pruning'].get('arch')  # prunedet 0.1
        record = None if legacy is None else {'channels': legacy}
    return record


@contextmanager
def named_file(filename: str):
    """Refusals of a checkpoint's record name the file it was read from."""
    try:
        yield
    except ArchitectureRecordError as error:
        raise error.in_file(filename) from None


def restore_in_runner(runner, checkpoint: dict) -> List[str]:
    """Shrink the runner's model to the checkpoint's architecture before
    its weights are loaded, and point the optimizers at the new parameters
    (``resume`` loads their state right after). Idempotent.

    A record that does not fit the model or the checkpoint's weights raises
    :class:`~prunedet.pruning.record_schema.ArchitectureRecordError` before
    anything changes; the loaders add the file name (:func:`named_file`)."""
    record = architecture_of(checkpoint)
    if record is None:
        return []
    model = unwrap(runner.model)
    before = dict(model.named_parameters())
    changed = restore_architecture(model, record,
                                   checkpoint.get('state_dict', checkpoint))
    for ema in averaged_models(runner):
        if restore_architecture(ema.module, record):
            refresh_averaged(runner)
    if changed:
        after = dict(model.named_parameters())
        renamed = {
            before[n]: p
            for n, p in after.items() if before[n] is not p
        }
        removed = [p for n, p in before.items() if n not in after]
        for optimizer in optimizers(runner):
            rebind_optimizer(optimizer, renamed)
            forget_parameters(optimizer, removed)
        rewrap(runner)
        runner.logger.info(
            f'Rebuilt the pruned architecture: {len(changed)} layers '
            f'reshaped, {sum(p.numel() for p in model.parameters())} '
            'parameters')
    return changed


def load_weights(model, checkpoint: dict, filename: str, strict: bool,
                 **kwargs) -> dict:
    """mmengine's copy of a checkpoint's weights into ``model``; in a strict
    load, weights that do not fit are an error naming the file."""
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    try:
        return _load_checkpoint_to_model(model, checkpoint, strict, **kwargs)
    except RuntimeError as error:
        if not strict:
            raise
        raise RuntimeError(f'{filename} does not fit the model of this '
                           f'config: {error}') from None


def averaged_models(runner) -> list:
    """EMA copies of the model kept by hooks (mmengine's ``EMAHook``); they
    must be reshaped whenever the model is."""
    from mmengine.model import BaseAveragedModel
    return [
        h.ema_model for h in runner.hooks
        if isinstance(getattr(h, 'ema_model', None), BaseAveragedModel)
    ]


def refresh_averaged(runner) -> None:
    """An averaged model caches its parameters: re-read them after a
    reshape."""
    for ema in averaged_models(runner):
        module = ema.module
        ema.avg_parameters = module.state_dict() if ema.update_buffers \
            else dict(module.named_parameters())
