"""What a stage that prunes a trained model once (GAL's removal, DCP's
channel selection) needs from the Runner before it starts."""
from mmengine.dist import get_world_size

from .safe_checkpoint_hook import SafeCheckpointHook


def check_pruning_stage(runner, method: str, start: str,
                        single_process: str) -> None:
    """One process (``single_process`` says why), a loaded checkpoint
    (``start`` names it) and SafeCheckpointHook to record the pruned
    architecture."""
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
