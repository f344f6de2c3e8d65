"""Resume exactly when anything draws random numbers (``soft_mode='reinit'``,
dropout, random data pairing, augmentation)."""
from typing import Dict, Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from prunedet.engine import random_state

KEY = 'random_state'


def loader_generators(runner) -> Dict[str, torch.Generator]:
    """The generators the training dataloader and its samplers own."""
    loader = runner.train_dataloader
    batch_sampler = getattr(loader, 'batch_sampler', None)
    owners = dict(
        dataloader=loader,
        sampler=getattr(loader, 'sampler', None),
        batch_sampler=batch_sampler,
        batch_sampler_sampler=getattr(batch_sampler, 'sampler', None))
    found = {}
    for name, owner in owners.items():
        generator = getattr(owner, 'generator', None)
        if isinstance(generator, torch.Generator) and all(
                generator is not g for g in found.values()):
            found[name] = generator
    return found


def sampler_seeds(runner) -> Dict[str, object]:
    """The training samplers' seeds, by owner. mmengine builds the
    dataloader before it resumes, so with ``randomness.seed=None`` a resumed
    run's samplers would take the new run's seed (another data order)."""
    loader = runner.train_dataloader
    batch_sampler = getattr(loader, 'batch_sampler', None)
    owners = dict(
        sampler=getattr(loader, 'sampler', None),
        batch_sampler=batch_sampler,
        batch_sampler_sampler=getattr(batch_sampler, 'sampler', None))
    return {
        name: owner
        for name, owner in owners.items()
        if isinstance(getattr(owner, 'seed', None), int)
        and not isinstance(owner.seed, bool)
    }


class _SeatBeforeFetch:
    """``IterBasedTrainLoop``'s data iterator, which lets the hook seat the
    random state right before the next training batch is fetched (the loop
    fetches it before ``before_train_iter``)."""

    def __init__(self, iterator, hook: 'RandomStateHook', runner):
        self.iterator, self.hook, self.runner = iterator, hook, runner

    def __iter__(self):
        return self

    def __next__(self):
        self.hook.before_fetch(self.runner)
        return next(self.iterator)

    def __getattr__(self, name):
        return getattr(self.__dict__['iterator'], name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every random generator with each checkpoint and make a resumed
    run draw the same random numbers as the uninterrupted one.

    The rule that makes both runs agree: *when the next training step
    starts, every generator is in the state it had when the last step
    ended* (at ``after_train_epoch``, or ``after_train_iter`` in an
    ``IterBasedTrainLoop``, first of all hooks: before the checkpoint hook
    saves that state). Between these points the two runs do different
    things (the uninterrupted one prunes, validates and runs the hooks
    after the checkpoint hook; the resumed one rebuilds, re-seeds, and an
    ``IterBasedTrainLoop`` replays the fetches of the batches it trained
    on), so whatever they draw there is overwritten. Both runs seat the
    state at the start of the next epoch (``before_train_epoch``, first of
    all hooks) or, in an ``IterBasedTrainLoop``, right before the next
    batch is fetched (the fetch runs the data pipeline before any hook is
    called).

    Saved per rank (torch CPU and CUDA, numpy, Python ``random``, the
    training dataloader's and samplers' own generators), with the samplers'
    seeds (with ``randomness.seed=None`` the resumed run draws a new one
    before it loads the checkpoint): every rank's state
    is gathered into the checkpoint rank 0 writes, and each rank restores
    its own. A checkpoint of another world size restores the ranks it has;
    one without a random state resumes with a warning. Hooks keep their own
    generators in their own state (``ProgressivePruningHook``, GAL).

    Not covered: generators inside dataloader workers, which mmengine seeds
    per worker whenever the workers start (exact, unless
    ``persistent_workers=True``), and checkpoints written in the middle of
    an epoch of an ``EpochBasedTrainLoop`` (mmengine restarts that epoch).

    :class:`~prunedet.engine.PruningRunner` registers this hook when the
    config does not; with mmengine's ``Runner`` add it to ``custom_hooks``.
    """
    priority = 'HIGHEST'

    def __init__(self):
        self._saved: Optional[list] = None  # every rank's, for checkpoints
        self._pending: Optional[dict] = None  # to seat at the next step
        self._skip = 0  # fetches of a resumed IterBasedTrainLoop's advance
        self._loaded: Optional[dict] = None

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and not isinstance(
                loop.dataloader_iterator, _SeatBeforeFetch):
            loop.dataloader_iterator = _SeatBeforeFetch(
                loop.dataloader_iterator, self, runner)
            self._skip = loop.iter  # the loop advances past these first
        loader = runner.train_dataloader
        if getattr(loader, 'num_workers', 0) and getattr(
                loader, 'persistent_workers', False):
            runner.logger.warning(
                'RandomStateHook: persistent_workers=True keeps the data '
                'workers\' random generators from epoch to epoch; they are '
                'not in checkpoints, so a resumed run draws other random '
                'numbers in the data pipeline')
        loaded, self._loaded = self._loaded, None
        if runner.iter == 0:  # a new run (load_from starts its own draws)
            return
        if loaded is None:
            runner.logger.warning(
                'The resumed checkpoint holds no random state (written '
                'before prunedet saved it): the run goes on from fresh '
                'generators, so anything random (dropout, reinit, data '
                'pairing) differs from the uninterrupted run')
            return
        self._pending = self._own_state(runner, loaded)
        self._restore_sampler_seeds(runner, loaded.get('sampler_seeds', {}))

    def before_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            self._seat(runner)

    def before_fetch(self, runner) -> None:
        """Called by the wrapped iterator of an ``IterBasedTrainLoop``."""
        if self._skip:
            self._skip -= 1
        else:
            self._seat(runner)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._saved = self._pending = None  # a step begins

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            self._snapshot(runner)

    def after_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            self._snapshot(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._saved is None:  # mid-epoch: not seated, rank 0's at least
            self._saved = [random_state.capture(loader_generators(runner))]
        checkpoint[KEY] = dict(
            ranks=self._saved,
            sampler_seeds={
                name: owner.seed
                for name, owner in sampler_seeds(runner).items()
            })

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(KEY)

    def _snapshot(self, runner) -> None:
        """Where the loop may save a checkpoint next, before any other hook:
        this rank's state, to seat when training goes on, and every rank's,
        for the checkpoint (only rank 0 calls ``before_save_checkpoint``, so
        the ranks meet here; an ``IterBasedTrainLoop`` on several processes
        gathers a few kilobytes after every iteration)."""
        own = random_state.capture(loader_generators(runner))
        self._pending = own
        self._saved = dist.all_gather_object(own) if \
            dist.get_world_size() > 1 else [own]

    def _seat(self, runner) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        missing = random_state.restore(state, loader_generators(runner))
        if missing:
            runner.logger.warning(
                f'RandomStateHook: the checkpoint has no state for the '
                f'generators of {missing}; they go on from their seeds')

    @staticmethod
    def _restore_sampler_seeds(runner, saved) -> None:
        """Before the first batch is drawn (samplers seed their order when
        their iterator starts)."""
        if not isinstance(saved, dict):
            raise ValueError(f'checkpoint field {KEY}.sampler_seeds must map '
                             f'sampler names to seeds, got {saved!r}')
        for name, owner in sampler_seeds(runner).items():
            seed = saved.get(name)
            if seed is None:
                continue
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise ValueError(f'checkpoint field {KEY}.sampler_seeds.'
                                 f'{name} must be an integer, got {seed!r}')
            if seed != owner.seed:
                runner.logger.info(
                    f'RandomStateHook: the {name} goes on with the seed of '
                    f'the resumed run ({seed}, not {owner.seed})')
                owner.seed = seed

    def _own_state(self, runner, loaded) -> Optional[dict]:
        """This rank's entry of a loaded random state, checked."""
        ranks = loaded.get('ranks') if isinstance(loaded, dict) else None
        if not isinstance(ranks, list) or not ranks:
            raise ValueError(
                f'checkpoint field {KEY!r} must be {{"ranks": [one state '
                f'per process]}}, got {type(loaded).__name__}')
        rank, world = dist.get_rank(), dist.get_world_size()
        if len(ranks) != world:
            runner.logger.warning(
                f'The checkpoint holds the random state of {len(ranks)} '
                f'processes and this run has {world}: ranks below '
                f'{min(len(ranks), world)} restore theirs, the others go on '
                'from fresh generators')
        if rank >= len(ranks):
            return None
        random_state.check(ranks[rank], f'checkpoint field {KEY}.ranks'
                           f'[{rank}]', loader_generators(runner))
        return ranks[rank]
