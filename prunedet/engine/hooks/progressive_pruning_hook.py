"""Progressive channel pruning while the model trains (PGP and RPGP)."""
import math
import numbers
from typing import Optional, Sequence, Union

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from prunedet.criteria import BaseCriterion
from prunedet.engine.checkpoints import from_plain, to_plain
from prunedet.engine.runner_model import (averaged_models, optimizers,
                                          refresh_averaged, restore_in_runner,
                                          rewrap, save_architecture, unwrap)
from prunedet.pruning.flops import FlopsEstimate, count_params, measure_flops
from prunedet.pruning.groups import DEFAULT_TIMEOUT, ChannelGraph
from prunedet.pruning.latency_table import (CACHE_DIR, LatencyEstimate,
                                            PlanTimer, check_runtime,
                                            measure_latency)
from prunedet.pruning.pruner import SOFT_MODES, TARGETS, ChannelPruner
from prunedet.pruning.architecture import record_architecture
from prunedet.pruning.record_schema import (check_original_widths,
                                            check_pruning_state)
from prunedet.pruning.schedules import PruningSchedule
from prunedet.pruning.tracing import trace_forward
from prunedet.pruning.verify import verify_graph
from prunedet.registry import CRITERIA

# Elements of one tracing image: the graph and FLOPs are traced on two
# images of ``input_shape`` (plus every activation they produce), so a shape
# beyond this (e.g. 3 x 3344 x 3344; detectors train at about 3 x 1333 x 800)
# is a typo that would allocate gigabytes, refused before training.
MAX_INPUT_ELEMENTS = 2**25


def build_criterion(cfg: Union[dict, str, BaseCriterion]) -> BaseCriterion:
    if isinstance(cfg, BaseCriterion):
        return cfg
    name = cfg.get('type') if isinstance(cfg, dict) else cfg
    if not isinstance(name, str) or CRITERIA.get(name) is None:
        raise KeyError(f'unknown pruning criterion {name!r}; registered: '
                       f'{sorted(CRITERIA.module_dict)}')
    cfg = dict(cfg) if isinstance(cfg, dict) else dict(type=name)
    cfg.setdefault('_scope_', CRITERIA.scope)  # not the config's mmdet/...
    return CRITERIA.build(cfg)


def _si(count: float) -> str:
    """3.2G, 41.5M, 6.1K: counts of every size stay readable."""
    for factor, unit in ((1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if count >= factor:
            return f'{count / factor:.3g}{unit}'
    return f'{count:.0f}'


def _check(name: str, value, kind: str, allow_none: bool = False) -> None:
    """Type checks that name the option (a config typo is a clear error)."""
    if value is None and allow_none:
        return
    ok = {
        'int': isinstance(value, int) and not isinstance(value, bool),
        'real': isinstance(value, numbers.Real)
        and not isinstance(value, bool),
        'bool': isinstance(value, bool),
    }[kind]
    if not ok:
        raise TypeError(f'ProgressivePruningHook: {name} must be '
                        f'{"an integer" if kind == "int" else "a number" if kind == "real" else "True or False"}'  # noqa: E501
                        f'{" or None" if allow_none else ""}, got {value!r}')


def _loss_scale(runner) -> float:
    """The scale an AMP loss scaler applied to this step's backward pass."""
    scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
    if scaler is None or not getattr(scaler, 'is_enabled', lambda: True)():
        return 1.
    return float(scaler.get_scale())


@HOOKS.register_module()
class ProgressivePruningHook(Hook):
    """Prune channels progressively while training, from scratch.

    ``by_epoch=True`` prunes after every ``interval`` epochs (PGP);
    ``by_epoch=False`` after every ``interval`` iterations (RPGP). From
    ``begin`` to ``end`` the pruned ratio follows ``ramp`` up to
    ``target_ratio`` of the channels (or of the FLOPs, ``target='flops'``, or
    of the latency measured in ``runtime``, ``target='latency'``).
    Selected channels are soft-pruned (they may recover) or removed
    physically with every coupled layer, and the optimizer's state (and an
    ``EMAHook``'s model) is cut with the same indices (see
    :mod:`prunedet.pruning.pruner`).

    Criterion statistics are committed right before each optimizer step,
    unscaled and only if finite; in ``soft_mode='mask'`` the masked channels
    are zeroed again after it. The architecture and the hook's state go into
    every checkpoint; loading one (``--resume``, ``load_from``,
    ``tools/test.py``) shrinks the freshly built model to it before the
    weights are copied in.

    Args:
        criterion: a registered criterion (config dict or name).
        target_ratio: share of channels (or FLOPs, or latency) removed at
            the end, in [0, 1).
        target: ``'channels'``, ``'flops'`` or ``'latency'`` (planned on a
            per-layer latency table measured on this machine at
            ``input_shape``, batch 1: :mod:`prunedet.pruning.latency_table`).
        runtime: where ``target='latency'`` measures: ``'eager'``,
            ``'channels_last'`` or ``'onnxruntime'``.
        latency_cache: folder of the measured latency tables (``None``:
            measured anew each run).
        latency_threads: threads the latency is measured with (default: as
            many as torch uses; on a machine busy with other work, 1
            measures steadily).
        latency_rounds: at the last step of a latency target, how many
            plans may be timed (a copy of the model at the plan beside the
            model) to correct the table where the plan is and plan again
            (0: the table's estimate is trusted).
        by_epoch: count ``interval``/``begin``/``end`` in epochs or
            iterations (an iteration-based loop needs ``False``).
        interval, begin, end: when pruning steps happen; ``end=None`` is the
            end of training; floats in [0, 1] are fractions of training.
        ramp: ``'geometric'`` (PGP), ``'exponential'`` (PSFP) or ``'linear'``.
        prunable: module-name prefixes whose output channels may be pruned.
        skip: layer names (or prefixes) that are never pruned.
        global_ranking: rank channels across layers instead of pruning the
            same ratio in each.
        layer_ratios: ``{layer: share}``: the channel group of each named
            layer loses that share of its channels by the end (reached
            along the schedule), the others are planned to the target
            around it; e.g. a detector's last conv, whose width sets the
            cost of RoIAlign and fc6 (Torch-Pruning's
            ``pruning_ratio_dict``).
        min_channels: channels each group keeps at least.
        round_to: round kept channels to a multiple (hardware-friendly).
        soft_steps, remove_ratio, soft_mode, hard_at_end: soft versus hard
            pruning, see :class:`~prunedet.pruning.pruner.ChannelPruner`.
        input_shape: ``(C, H, W)`` for tracing and FLOPs, at most
            :data:`MAX_INPUT_ELEMENTS` elements; default: the shape of rank
            0's first training batch.
        step_channels: the iterative Taylor procedure (Molchanov et al.
            2017): every step removes this many globally weakest channels
            until ``target_ratio`` is met; a step at ``end`` that has not met
            it prunes straight to it. Usually from a trained model
            (``load_from``), hard (``soft_steps=0``).
        graph_timeout: seconds that building the channel graph may take
            before it fails naming the module where it stuck (``None``: no
            limit).
    """
    priority = 'NORMAL'

    def __init__(self,
                 criterion: Union[dict, str] = dict(type='GradientNorm'),
                 target_ratio: float = 0.5,
                 target: str = 'channels',
                 by_epoch: bool = True,
                 interval: Optional[int] = 1,
                 begin: Union[int, float] = 0,
                 end: Union[int, float, None] = None,
                 ramp: str = 'geometric',
                 prunable: Sequence[str] = ('backbone', ),
                 skip: Sequence[str] = (),
                 global_ranking: bool = False,
                 layer_ratios: Optional[dict] = None,
                 min_channels: int = 1,
                 round_to: int = 1,
                 soft_steps: Optional[int] = 0,
                 remove_ratio: float = 0.,
                 soft_mode: str = 'zero',
                 hard_at_end: bool = True,
                 input_shape: Optional[Sequence[int]] = None,
                 step_channels: Optional[int] = None,
                 graph_timeout: Optional[float] = DEFAULT_TIMEOUT,
                 runtime: str = 'eager',
                 latency_cache: Optional[str] = CACHE_DIR,
                 latency_threads: Optional[int] = None,
                 latency_rounds: int = 4):
        _check('target_ratio', target_ratio, 'real')
        _check('step_channels', step_channels, 'int', allow_none=True)
        if step_channels is not None and (step_channels < 1
                                          or soft_steps != 0):
            raise ValueError(
                'step_channels (channels removed per step) must be >= 1 and '
                'goes with hard pruning (soft_steps=0), got '
                f'step_channels={step_channels}, soft_steps={soft_steps}')
        _check('interval', interval, 'int', allow_none=True)
        _check('graph_timeout', graph_timeout, 'real', allow_none=True)
        _check('latency_threads', latency_threads, 'int', allow_none=True)
        _check('latency_rounds', latency_rounds, 'int')
        if latency_rounds < 0:
            raise ValueError(
                f'latency_rounds must be >= 0, got {latency_rounds}')
        _check('begin', begin, 'real')
        _check('end', end, 'real', allow_none=True)
        _check('min_channels', min_channels, 'int')
        _check('round_to', round_to, 'int')
        _check('soft_steps', soft_steps, 'int', allow_none=True)
        _check('remove_ratio', remove_ratio, 'real')
        for name, flag in (('by_epoch', by_epoch), ('global_ranking',
                                                    global_ranking),
                           ('hard_at_end', hard_at_end)):
            _check(name, flag, 'bool')
        if target not in TARGETS:
            raise ValueError(f'target must be one of {TARGETS}, got {target!r}')
        if soft_mode not in SOFT_MODES:
            raise ValueError(
                f'soft_mode must be one of {SOFT_MODES}, got {soft_mode!r}')
        check_runtime(runtime)
        if not 0. <= remove_ratio <= 1.:
            raise ValueError(
                f'remove_ratio must be in [0, 1], got {remove_ratio}')
        if soft_steps is not None and soft_steps < 0:
            raise ValueError(f'soft_steps must be >= 0, got {soft_steps}')
        if min_channels < 1 or round_to < 1:
            raise ValueError('min_channels and round_to must be >= 1, got '
                             f'{min_channels} and {round_to}')
        if layer_ratios is not None and not (
                isinstance(layer_ratios, dict)
                and all(isinstance(n, str) for n in layer_ratios)):
            raise TypeError('layer_ratios is a dict of layer name: share of '
                            f'its channels removed, got {layer_ratios!r}')
        for name, share in (layer_ratios or {}).items():
            _check(f'layer_ratios[{name!r}]', share, 'real')
            if not 0. <= share < 1.:
                raise ValueError(f'layer_ratios[{name!r}] must be a share in '
                                 f'[0, 1), got {share!r}')
        if layer_ratios and (target == 'channels' or step_channels):
            raise ValueError(
                'layer_ratios plans the other groups around a FLOPs or '
                'latency target step by step: it needs target=\'flops\' or '
                '\'latency\' and no step_channels')
        if isinstance(prunable, str) or isinstance(skip, str) or not all(
                isinstance(n, str) for n in (*prunable, *skip)):
            raise TypeError('prunable and skip are lists of layer names')
        if input_shape is not None and (
                len(input_shape) != 3
                or not all(isinstance(d, int) and d > 0
                           for d in input_shape)):
            raise ValueError('input_shape is (channels, height, width), got '
                             f'{input_shape!r}')
        if input_shape is not None and \
                math.prod(input_shape) > MAX_INPUT_ELEMENTS:
            raise ValueError(
                f'ProgressivePruningHook: input_shape={list(input_shape)} '
                f'has {math.prod(input_shape):.3g} elements per image; '
                f'tracing takes at most {MAX_INPUT_ELEMENTS} '
                '(MAX_INPUT_ELEMENTS, e.g. 3 x 3344 x 3344)')
        self.criterion = build_criterion(criterion)
        self.schedule = PruningSchedule(target_ratio, begin, end, interval,
                                        ramp)
        self.target = target
        self.by_epoch = by_epoch
        self.prunable = tuple(prunable)
        self.skip = tuple(skip)
        self.pruner_cfg = dict(
            target=target,
            global_ranking=global_ranking,
            layer_ratios=dict(layer_ratios or {}),
            min_channels=min_channels,
            round_to=round_to,
            soft_steps=soft_steps,
            remove_ratio=remove_ratio,
            soft_mode=soft_mode,
            hard_at_end=hard_at_end,
            latency_rounds=latency_rounds)
        self.input_shape = tuple(input_shape) if input_shape else None
        self.step_channels = step_channels
        self.graph_timeout = graph_timeout
        self.runtime = runtime
        self.latency_cache = latency_cache
        self.latency_threads = latency_threads

        self.model = None
        self.pruner: Optional[ChannelPruner] = None
        self.steps_done = 0
        self.finished = False
        self.original_flops: Optional[float] = None
        self.original_params: Optional[int] = None
        self.flops_ratio = 1.
        self.original_latency: Optional[float] = None  # seconds, measured
        self.latency_ratio = 1.  # estimated from the table
        self._restored: dict = {}
        self._loaded_state: Optional[dict] = None  # from after_load_checkpoint
        self._step_hooks: list = []
        self._committed = False  # statistics committed this iteration
        self._inputs: Optional[torch.Tensor] = None  # for measuring FLOPs
        # fresh weights ('reinit', a mask's release) come from here, seeded
        # with the run's seed and saved in the state: a resume draws alike
        self.generator = torch.Generator()

    # --- life cycle -----------------------------------------------------

    def before_run(self, runner) -> None:
        """Check layer names against the model before anything runs."""
        self.model = unwrap(runner.model)
        names = [n for n, _ in self.model.named_modules()]

        def exists(prefix):
            return prefix == '' or any(
                n == prefix or n.startswith(prefix + '.') for n in names)

        for option in ('prunable', 'skip'):
            missing = [p for p in getattr(self, option) if not exists(p)]
            if missing:
                raise ValueError(
                    f'ProgressivePruningHook: {option} names layers that do '
                    f'not exist in {type(self.model).__name__}: {missing}')

    def before_train(self, runner) -> None:
        if self.by_epoch and isinstance(runner.train_loop,
                                        IterBasedTrainLoop):
            raise ValueError(
                'ProgressivePruningHook: by_epoch=True, but this config '
                'trains by iterations (IterBasedTrainLoop), so no epoch ever '
                'ends before the last checkpoint: set by_epoch=False and '
                'count interval/begin/end in iterations')
        self.schedule.bind(
            runner.max_epochs if self.by_epoch else runner.max_iters)
        seed = [runner.seed]  # rank 0's: ranks draw the same weights
        if dist.get_world_size() > 1:
            dist.broadcast_object_list(seed, src=0)
        self.generator.manual_seed(seed[0])
        state, self._loaded_state = self._loaded_state, None
        if state is not None and runner.iter > 0:  # resumed mid-run
            self.load_state_dict(state)
        elif state is not None:  # load_from a model pruned by another run
            runner.logger.info(
                'Pruning: the loaded checkpoint was pruned by an earlier run; '
                'this run prunes it anew (its channels and FLOPs are the new '
                'reference of target_ratio)')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None):
        if self.pruner is None and not self.finished:
            self._build(runner, data_batch)
        self._committed = False

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self.pruner is not None and not self._committed \
                and self._step_boundary(runner):
            self.criterion.discard()  # the step was skipped (AMP overflow)
        if not self.by_epoch and not self.finished \
                and self.schedule.is_step(runner.iter + 1):
            self._prune_step(runner, runner.iter + 1)
        runner.message_hub.update_scalar('train/flops_ratio',
                                         self.flops_ratio)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and not self.finished \
                and self.schedule.is_step(runner.epoch + 1):
            self._prune_step(runner, runner.epoch + 1)

    def after_train(self, runner) -> None:
        self._remove_step_hooks()
        self.criterion.detach()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        to_plain(checkpoint)
        save_architecture(runner, checkpoint)
        checkpoint['pruning'] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Shrink the model to the saved architecture before its weights
        are loaded, and point the optimizer at the new parameters. The
        pruning state is kept for :meth:`before_train`: a resumed run goes
        on with it, a run that only loads the model starts its own."""
        from_plain(checkpoint)
        self._check_state(checkpoint.get('pruning'))
        widths = record_architecture(unwrap(runner.model))['channels']
        check_original_widths(checkpoint.get('pruning'),
                              {name: c[1] for name, c in widths.items()})
        restore_in_runner(runner, checkpoint)
        self._loaded_state = checkpoint.get('pruning')

    # --- pruning ------------------------------------------------------

    def _example_inputs(self, data_batch) -> torch.Tensor:
        """Two samples to trace: the configured shape, or rank 0's first
        batch (every rank traces the same inputs, so FLOPs and plans agree).
        """
        model = self.model
        device = next(model.parameters()).device
        if self.input_shape is not None:
            return torch.zeros(2, *self.input_shape, device=device)
        inputs = [model.data_preprocessor(data_batch, False)['inputs'][:2]]
        if dist.get_world_size() > 1:
            inputs = [inputs[0].cpu()]
            dist.broadcast_object_list(inputs, src=0)
        return inputs[0].to(device)

    def _build(self, runner, data_batch) -> None:
        model = self.model
        inputs = self._example_inputs(data_batch)
        forward = trace_forward(model)
        graph = ChannelGraph(model, inputs, forward, self.prunable, self.skip,
                             self.graph_timeout)
        verify_graph(graph, inputs[:1], forward)
        if not graph.roots:
            raise RuntimeError('ProgressivePruningHook: no prunable channels '
                               f'under prunable={list(self.prunable)}')
        self._inputs = inputs[:1]
        total, per_layer = measure_flops(model, self._inputs, forward)
        if self.original_flops is None:
            self.original_flops = total
            self.original_params = count_params(model)
        estimate = FlopsEstimate(total, per_layer, graph.groups(),
                                 self.original_flops)
        latency = self._latency_estimate(graph) \
            if self.target == 'latency' else None
        self.pruner = ChannelPruner(
            graph,
            self.criterion,
            flops=estimate,
            latency=latency,
            final_ratio=self.schedule.target,
            latency_timer=PlanTimer(model, self._inputs, self.runtime,
                                    threads=self.latency_threads)
            if latency is not None else None,
            original=self._restored.get('original'),
            generator=self.generator,
            **self.pruner_cfg)
        if self._restored:
            self.pruner.load_state_dict(self._restored)
        if not self.finished:
            self.pruner.check(self.schedule.target)
        self.flops_ratio = total / self.original_flops
        if latency is not None:
            self.latency_ratio = latency(
                {g.name: g.num_channels for g in graph.groups()}) / \
                self.original_latency
        for optimizer in optimizers(runner):
            self._step_hooks += [
                optimizer.register_step_pre_hook(
                    lambda *_: self._commit(runner)),
                optimizer.register_step_post_hook(
                    lambda *_: self.pruner.hold(optimizers(runner))),
            ]
        runner.logger.info(
            f'Pruning {len(graph.roots)} channel groups with '
            f'{type(self.criterion).__name__}, {self.schedule.num_steps} '
            f'steps to {self.schedule.target:.0%} of the {self.target} by '
            f'{"epoch" if self.by_epoch else "iteration"} '
            f'{self.schedule.end}; now {_si(count_params(model))} params, '
            f'{_si(total)} FLOPs at input '
            f'{tuple(inputs.shape[1:])}' +
            (f', {latency.original * 1e3:.3g} ms at batch 1 in '
             f'{self.runtime} (per-layer latency table: '
             f'{len(latency.terms)} layers)' if latency is not None else ''))

    def _latency_estimate(self, graph) -> LatencyEstimate:
        """The latency table, measured (or read from the cache) on rank 0
        and given to every rank: one machine's timings, one plan."""
        measured = [measure_latency(self.model, self._inputs, graph.groups(),
                                    self.runtime, self.latency_cache,
                                    threads=self.latency_threads)
                    if dist.get_rank() == 0 else None]
        if dist.get_world_size() > 1:
            dist.broadcast_object_list(measured, src=0)
        if self.original_latency is None:
            self.original_latency = measured[0]['total']
        return LatencyEstimate.from_measured(measured[0], graph.groups(),
                                             self.original_latency)

    def _commit(self, runner) -> None:
        """Right before an optimizer step: this iteration's statistics."""
        if self._committed:
            return  # several optimizers: once per iteration
        self._committed = True
        if not self.criterion.commit(self.pruner.groups, _loss_scale(runner)):
            runner.logger.warning(
                f'Iteration {runner.iter + 1}: non-finite pruning '
                'statistics (NaN/inf gradients), not used to rank channels')

    @staticmethod
    def _step_boundary(runner) -> bool:
        """Whether this iteration ended with an optimizer step (not one
        that accumulates gradients for a later step)."""
        should_update = getattr(runner.optim_wrapper, 'should_update', None)
        return should_update() if callable(should_update) else True

    def _prune_step(self, runner, done: int) -> None:
        last = self.schedule.is_last(done)
        count = None if last else self.step_channels
        ratio = self.schedule.target if count else self.schedule.ratio(done)
        result = self.pruner.step(
            ratio, last, optimizers(runner),
            mirrors=[ema.module for ema in averaged_models(runner)],
            count=count)
        unit = 'epoch' if self.by_epoch else 'iter'
        if result.postponed:
            if last:
                raise RuntimeError(
                    f'ProgressivePruningHook: the last pruning step ({unit} '
                    f'{done}) cannot choose channels: {result.postponed}. '
                    'Training has probably diverged (check the loss and the '
                    'learning rate).')
            runner.logger.warning(
                f'Pruning step postponed at {unit} {done}: '
                f'{result.postponed}; the next step will catch up')
            return
        self.steps_done += 1
        if result.hard:
            rewrap(runner)
            refresh_averaged(runner)
        if result.dead:
            runner.logger.warning(
                f'Pruning: the scores of {result.dead} are all zero (a dead '
                'or collapsed layer): their channels are not ranked on '
                'them and are kept at this step')
        if self.step_channels and last and \
                result.soft + result.hard > 2 * self.step_channels:
            runner.logger.warning(
                f'Pruning: {self.step_channels} channels per step '
                '(step_channels) had not reached the target when the window '
                f'ended ({unit} {done}), so its last step removed '
                f'{result.soft + result.hard} channels at once. Raise '
                'step_channels or end, or lower the interval')
        keep = {name: c[0] for name, c in result.channels.items()}
        self.flops_ratio = self.pruner.flops(keep) / self.original_flops
        source = 'estimated'
        if result.measured_latency is not None:  # the plan cut was timed
            self.latency_ratio, source = result.measured_latency, 'measured'
        elif self.pruner.latency is not None:
            self.latency_ratio = self.pruner.latency(keep) / \
                self.original_latency
        if count and self._target_met(result):
            last = True  # Taylor: the target is met before the deadline
        kept = sum(c[0] for c in result.channels.values())
        total = sum(c[1] for c in result.channels.values())
        what = f'{count} weakest channels' if count else \
            f'ratio {result.ratio:.3f} of the {self.target}'
        of = '' if count else f'/{self.schedule.num_steps}'
        # behind a norm and a ReLU, a zeroed filter regrows only if beta > 0
        regrow = f', {result.regrowable} of the {result.soft} zeroed can ' \
            'regrow (no norm, or its beta > 0)' if \
            self.pruner.soft_mode == 'zero' and result.soft else ''
        lines = [
            f'Pruning step {self.steps_done}{of} ({unit} {done}): {what}, '
            f'{result.soft} soft + {result.hard} hard pruned, '
            f'{result.recovered} soft-pruned recovered{regrow}; channels '
            f'{kept}/{total}, params {_si(count_params(self.model))}, FLOPs '
            f'{self.flops_ratio:.1%} of the original'
            + (f', latency {self.latency_ratio:.1%} ({self.runtime}, '
               f'{source})' if self.target == 'latency' else '')
        ]
        if result.timed:
            lines.append(
                '  plans timed (latency of the original, estimated -> '
                'measured; the one nearest the target is cut): ' + ', '.join(
                    f'{e:.3f} -> {m:.3f}' for e, m in result.timed))
        lines += [
            f'  {name}: {k}/{orig}'
            for name, (k, orig) in result.channels.items()
        ]
        runner.logger.info('\n'.join(lines))
        if last:
            self._finish(runner)

    def _target_met(self, result) -> bool:
        if self.target == 'flops':
            return self.flops_ratio <= 1. - self.schedule.target + 1e-6
        if self.target == 'latency':
            return self.latency_ratio <= 1. - self.schedule.target + 1e-6
        kept = sum(c[0] for c in result.channels.values())
        total = sum(c[1] for c in result.channels.values())
        return kept <= round(total * (1. - self.schedule.target))

    def _finish(self, runner) -> None:
        """Stop collecting statistics and measure the final model."""
        self.finished = True
        self._remove_step_hooks()
        self.criterion.detach()
        total, _ = measure_flops(self.model, self._inputs,
                                 trace_forward(self.model))
        self.flops_ratio = total / self.original_flops
        runner.logger.info(
            f'Pruning finished: {len(self.pruner.graph.roots)} groups, '
            f'{_si(count_params(self.model))} params, measured '
            f'{_si(total)} FLOPs = {self.flops_ratio:.1%} of the original; '
            f'{self.pruner.kept_after_soft()} channels that were '
            'soft-pruned at some step are kept')

    def _remove_step_hooks(self) -> None:
        for handle in self._step_hooks:
            handle.remove()
        self._step_hooks = []

    # --- state --------------------------------------------------------

    def state_dict(self) -> dict:
        state = dict(self._restored)
        if self.pruner is not None:
            state.update(self.pruner.state_dict())
        state.update(
            steps_done=self.steps_done,
            finished=self.finished,
            original_flops=self.original_flops,
            original_params=self.original_params,
            flops_ratio=self.flops_ratio,
            original_latency=self.original_latency,
            latency_ratio=self.latency_ratio,
            generator=self.generator.get_state())
        return state

    _PRUNER_KEYS = ('original', 'criterion', *ChannelPruner._PER_CHANNEL)

    def _check_state(self, state) -> None:
        """A checkpoint's state holds what :meth:`state_dict` writes, typed
        as it writes it (``'arch'``: prunedet 0.1's record)."""
        check_pruning_state(state, {*self._PRUNER_KEYS, *self.state_dict(),
                                    'arch'}, ChannelPruner._PER_CHANNEL)

    def load_state_dict(self, state: dict) -> None:
        self._check_state(state)
        self._restored = {
            k: v
            for k, v in state.items() if k in self._PRUNER_KEYS
        }
        self.steps_done = state.get('steps_done', 0)
        self.finished = state.get('finished', False)
        self.original_flops = state.get('original_flops')
        self.original_params = state.get('original_params')
        self.flops_ratio = state.get('flops_ratio', 1.)
        self.original_latency = state.get('original_latency')
        self.latency_ratio = state.get('latency_ratio', 1.)
        if 'generator' in state:  # absent in checkpoints of older versions
            try:
                self.generator.set_state(state['generator'])
            except (TypeError, RuntimeError) as error:
                raise ValueError(
                    'checkpoint field pruning.generator is not a '
                    f'torch.Generator state: {error}') from None
        if self.pruner is not None:
            self.pruner.load_state_dict(self._restored)
