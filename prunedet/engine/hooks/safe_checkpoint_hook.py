"""mmengine's CheckpointHook, made safe to kill and to load."""
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from prunedet.engine.checkpoints import (from_plain, remove_orphaned_temp_files,
                                         to_plain, write_atomic)
from prunedet.engine.runner_model import restore_in_runner, save_architecture


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints survive a crash and load safely.

    Differences from mmengine's hook, each for a failure it prevents:

    * files are written atomically (``backend='atomic_local'`` unless
      ``backend_args`` says otherwise) and ``last_checkpoint`` too: a kill
      mid-write leaves the previous files whole, and at the start of training
      the temporary files of saves whose writer is gone are removed (another
      live run's are kept);
    * with ``max_keep_ckpts`` the oldest checkpoint, and with ``save_best``
      the previous best one, is deleted only *after* the new one is complete
      (mmengine deletes first);
    * the message hub is stored as plain data, so the file loads with
      ``torch.load(weights_only=True)`` and no allowlist;
    * the model's architecture is recorded, so a pruned checkpoint rebuilds
      its model in any config (fine-tuning ``load_from``, ``tools/test.py``).

    Arguments are those of :class:`mmengine.hooks.CheckpointHook`.
    """

    def __init__(self, *args, backend_args=None, **kwargs):
        if backend_args is None and kwargs.get('file_client_args') is None:
            backend_args = dict(backend='atomic_local')
        super().__init__(*args, backend_args=backend_args, **kwargs)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and self.file_backend.isdir(self.out_dir):
            remove_orphaned_temp_files(self.out_dir, runner.logger)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        to_plain(checkpoint)
        save_architecture(runner, checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from_plain(checkpoint)
        restore_in_runner(runner, checkpoint)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's, with the previous best file deleted last."""
        backend, deferred = self.file_backend, []
        backend.remove = backend.rmtree = deferred.append
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            del backend.remove, backend.rmtree  # the class's methods again
        for path in deferred:
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):
                backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        """mmengine's order, except that outdated files go last."""
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        write_atomic(self.last_ckpt.encode(),
                     self.file_backend.join_path(runner.work_dir,
                                                 'last_checkpoint'))
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)
