"""The Runner of prunedet's tools: mmengine's, with checkpoints that load
safely and rebuild the pruned models they hold."""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from .checkpoints import from_plain, use_safe_loaders
from .hooks.random_state_hook import RandomStateHook
from .runner_model import (load_weights, named_file, restore_in_runner,
                           unwrap)


@RUNNERS.register_module()
class PruningRunner(Runner):
    """mmengine's ``Runner`` for models that may be pruned.

    * Checkpoints load with ``torch.load(weights_only=True)`` and an
      allowlist; the config's ``trusted_checkpoints`` lists files (or URLs)
      to unpickle fully (:mod:`prunedet.engine.checkpoints`).
    * Every load (``load_from``, ``resume``, ``tools/test.py``) shrinks the
      model to the architecture recorded in the checkpoint before the
      weights are copied, whatever hooks the config has: a pruned checkpoint
      fine-tunes in a stock config instead of leaving every reshaped layer
      at random initialisation, with only mmengine's warnings to say so.
      The record is checked first: one that does not fit the model or the
      file's weights is refused naming the file, the layer and the field
      (:mod:`prunedet.pruning.record_schema`).
    * ``strict_load = True`` in the config (``tools/test.py`` sets it) makes
      missing, unexpected or misshapen weights an error.
    * every checkpoint holds the random generators' states, so a resumed
      run draws what the uninterrupted one drew (:class:`RandomStateHook`,
      registered unless the config has it).

    ``tools/train.py`` and ``tools/test.py`` use it; with mmdet's or
    mmpretrain's own tools, name it in the config:
    ``runner_type = 'PruningRunner'``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        use_safe_loaders(self.cfg.get('trusted_checkpoints', None) or ())
        self.strict_load = bool(self.cfg.get('strict_load', False))

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        if not any(isinstance(h, RandomStateHook) for h in self.hooks):
            self.register_hook(RandomStateHook())

    def load_checkpoint(self,
                        filename: str,
                        map_location='cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """mmengine's load, with the architecture rebuilt between the
        ``after_load_checkpoint`` hooks and the copy of the weights."""
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        with named_file(filename):  # a refused record names the file
            from_plain(checkpoint)
            self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
            restore_in_runner(self, checkpoint)
        strict = strict or self.strict_load
        checkpoint = load_weights(unwrap(self.model), checkpoint, filename,
                                  strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint
