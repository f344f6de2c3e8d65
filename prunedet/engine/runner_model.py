"""The Runner's model after a reshape: optimizers, wrappers, checkpoints.

A hard prune (or a pruned checkpoint loaded into a fresh model) replaces
parameters. Everything the Runner built around the old ones has to follow:
the optimizer's param groups and state, and a distributed wrapper that
registered them. These helpers are shared by every hook that reshapes.
"""
from typing import List

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

from prunedet.pruning.architecture import (ARCH_KEY, record_architecture,
                                           restore_architecture)
from prunedet.pruning.surgery import rebind_optimizer


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


def restore_in_runner(runner, checkpoint: dict) -> List[str]:
    """Shrink the runner's model to the checkpoint's architecture before
    its weights are loaded, and point the optimizers at the new parameters
    (``resume`` loads their state right after). Idempotent."""
    record = architecture_of(checkpoint)
    if record is None:
        return []
    model = unwrap(runner.model)
    before = dict(model.named_parameters())
    changed = restore_architecture(model, record)
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


def check_pruning_stage(runner, method: str, start: str,
                        single_process: str) -> None:
    """A stage that prunes a trained model once and saves the result needs
    one process (``single_process`` says why), a loaded checkpoint
    (``start`` names it) and SafeCheckpointHook to record the pruned
    architecture."""
    from mmengine.dist import get_world_size

    from .hooks import SafeCheckpointHook
    if get_world_size() > 1:
        raise RuntimeError(f'{method} runs in one process: {single_process} '
                           '(start it without a launcher)')
    if not getattr(runner, '_has_loaded', False):
        raise RuntimeError(f'{method}: no model was loaded; set load_from to '
                           f'{start}')
    if not any(isinstance(h, SafeCheckpointHook) for h in runner.hooks):
        raise RuntimeError(
            f'{method}: the pruned model is saved by SafeCheckpointHook '
            '(default_hooks.checkpoint), which records its architecture; '
            'this config has none')


def forget_parameters(optimizer: torch.optim.Optimizer, params) -> None:
    """Take parameters of removed modules (a residual block replaced by
    its shortcut, a deleted branch) out of ``optimizer`` with their state,
    so that it only steps, decays and saves what the model holds."""
    gone = {id(p) for p in params}
    if not gone:
        return
    for group in optimizer.param_groups:
        group['params'] = [p for p in group['params'] if id(p) not in gone]
    for p in [p for p in optimizer.state if id(p) in gone]:
        del optimizer.state[p]


def load_checkpoint(runner, filename: str, strict: bool = True) -> dict:
    """``Runner.load_checkpoint``, strict by default, for any config.

    mmengine loads ``load_from`` non-strictly: a pruned checkpoint in an
    unpruned config, or one of another model, leaves layers at random
    initialisation with a warning. Here missing, unexpected or misshapen
    weights are an error, and the pruned architecture is rebuilt even when
    the config has none of prunedet's hooks.
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    from .checkpoints import from_plain, load_file
    checkpoint = load_file(filename, map_location='cpu')
    from_plain(checkpoint)
    runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    restore_in_runner(runner, checkpoint)
    try:
        _load_checkpoint_to_model(
            unwrap(runner.model), checkpoint, strict=strict)
    except RuntimeError as error:
        raise RuntimeError(f'{filename} does not fit the model of this '
                           f'config: {error}') from None
    runner._has_loaded = True
    runner.logger.info(f'Load checkpoint from {filename}')
    return checkpoint


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
