"""DCP stage 2 as an mmengine training loop: channel selection, then surgery.

Selection is not training with a pruning hook on the side: it walks the
layers once, each with its own data passes, everything but the layer frozen.
So it is a loop (``train_cfg = dict(type='DCPSelectionLoop', ...)``) that
``tools/train.py`` runs like any other: ``load_from`` brings the stage-1
model, the runner's hooks log every added channel (one "iteration") and
save the result at the end of the single "epoch", and validation follows.

For each layer, in forward order, :class:`~prunedet.dcp.GreedyChannelSelection`
keeps ``C - floor(C * pruning_rate)`` of its ``C`` input channels under the
joint loss of :mod:`prunedet.dcp.objective`; the others are then removed
physically, from the layer and from the layers that produce them, with the
channel graph and surgery every prunedet method uses. Input channels shared
with other layers (a residual stream, a concat) are refused: DCP prunes the
inside of a block, never what other layers also read. At the end the
auxiliary heads are dropped, so the checkpoint holds the pruned classifier
alone and its architecture record rebuilds it in a plain classifier config.
"""
import copy
import math
import numbers
import time
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.registry import LOOPS
from mmengine.runner import BaseLoop

from prunedet.dcp import SUB_OPTIMIZER, DCPClassifier, GreedyChannelSelection
from prunedet.dcp.features import completion_order, named
from prunedet.dcp.objective import layer_objective
from prunedet.engine.hooks.pruning_stage import check_pruning_stage
from prunedet.engine.runner_model import optimizers, unwrap
from prunedet.pruning.flops import measure_flops
from prunedet.pruning.groups import ChannelGraph, ChannelGroup, ParamSlice
from prunedet.pruning.surgery import remove_channels
from prunedet.pruning.tracing import trace_forward

_LAYERS = (nn.Conv2d, nn.Linear)


def _number(name: str, value, low: float, high: Optional[float] = None,
            integer: bool = False, allow_none: bool = False) -> None:
    """Fail with the option's name on a value of the wrong type or range."""
    if value is None and allow_none:
        return
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or value < low \
            or (high is not None and value >= high):
        what = 'an integer' if integer else 'a number'
        bound = f'in [{low}, {high})' if high is not None else f'>= {low}'
        raise ValueError(f'DCPSelectionLoop: {name} must be {what} {bound}'
                         f'{" or None" if allow_none else ""}, got {value!r}')


def _classifier_params(model: nn.Module) -> int:
    aux = getattr(model, 'aux_heads', None)
    skip = {id(p) for p in aux.parameters()} if aux is not None else set()
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


@LOOPS.register_module()
class DCPSelectionLoop(BaseLoop):
    """DCP's channel selection (stage 2) over ``layers`` of the stage-1 model.

    Args:
        layers: names of the conv/linear layers whose input channels are
            pruned (ResNet: each block's ``conv2``; VGG: every conv but the
            first).
        pruning_rate: share of each layer's input channels removed, in
            [0, 1): ``floor(C * pruning_rate)`` of ``C`` go.
        samples: training samples per gradient pass (rounded up to whole
            batches); ``None``: the whole training set, as in the paper.
        sub_steps: SGD steps (batches) of the sub-problem after each added
            channel; ``None``: as many as a gradient pass (the code).
        mse_weight, ce_weight: weights of the reconstruction and the
            auxiliary cross-entropy terms (the code: 1 and 1).
        optimizer: the sub-problem's optimizer (the code's SGD by default).
        warm_start: a selected channel starts from its trained weights.
        max_epochs: accepted and ignored, so that options meant for the other
            stages' epoch loops (the comparison tool passes the same options
            to every stage) do not break this one; selection is one pass.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 layers: Sequence[str],
                 pruning_rate: float = 0.5,
                 samples: Optional[int] = None,
                 sub_steps: Optional[int] = None,
                 mse_weight: float = 1.,
                 ce_weight: float = 1.,
                 optimizer: dict = SUB_OPTIMIZER,
                 warm_start: bool = True,
                 max_epochs: Optional[int] = None):
        super().__init__(runner, dataloader)
        model = unwrap(runner.model)
        if not isinstance(model, DCPClassifier) or not model.has_aux:
            raise TypeError(
                'DCPSelectionLoop selects channels of the stage-1 model, a '
                f'DCPClassifier with its auxiliary heads; got '
                f'{type(model).__name__}')
        _number('pruning_rate', pruning_rate, 0., 1.)
        _number('samples', samples, 1, integer=True, allow_none=True)
        _number('sub_steps', sub_steps, 0, integer=True, allow_none=True)
        _number('mse_weight', mse_weight, 0.)
        _number('ce_weight', ce_weight, 0.)
        if isinstance(layers, str) or not layers or len(set(layers)) != len(
                layers):
            raise ValueError('DCPSelectionLoop: layers must be a non-empty '
                             f'list of distinct layer names, got {layers!r}')
        for name, module in zip(layers,
                                named(model, layers, 'DCPSelectionLoop: '
                                      'layers')):
            if not isinstance(module, _LAYERS) or getattr(
                    module, 'groups', 1) != 1:
                raise ValueError(
                    f'DCPSelectionLoop: {name} is a {type(module).__name__}; '
                    'DCP selects input channels of Conv2d (groups=1) and '
                    'Linear layers')
        self.layers = list(layers)
        self.pruning_rate = float(pruning_rate)
        self.mse_weight, self.ce_weight = float(mse_weight), float(ce_weight)
        self.optimizer = dict(optimizer)
        self.warm_start = warm_start
        self.ignored_max_epochs = max_epochs
        batch = self.dataloader.batch_size or 1
        self.grad_batches = len(self.dataloader) if samples is None else \
            math.ceil(samples / batch)
        self.sub_steps = self.grad_batches if sub_steps is None else sub_steps
        self._epoch = self._iter = 0
        # one iteration per kept channel; exact once the groups are known
        self._max_iters = sum(
            self._keep(m.weight.shape[1])
            for m in named(model, layers, 'layers'))

    @property
    def max_epochs(self) -> int:
        return 1

    @property
    def max_iters(self) -> int:
        return self._max_iters

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def iter(self) -> int:
        return self._iter

    def _keep(self, channels: int) -> int:
        return channels - math.floor(channels * self.pruning_rate)

    # --- data -----------------------------------------------------------

    def _batches(self, model) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Preprocessed (inputs, labels), cycling through the training set
        (a new shuffle each round)."""
        rounds = 0
        while True:
            for batch in self.dataloader:
                data = model.data_preprocessor(batch, False)
                labels = torch.cat(
                    [s.gt_label for s in data['data_samples']])
                yield data['inputs'], labels.to(data['inputs'].device)
            rounds += 1
            sampler = getattr(self.dataloader, 'sampler', None)
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(rounds)

    # --- the plan -------------------------------------------------------

    @staticmethod
    def _input_group(graph: ChannelGraph, groups: List[ChannelGroup],
                     name: str) -> Tuple[ChannelGroup, ParamSlice]:
        """The group whose channels are ``name``'s inputs, and the layer's
        weight as a slice of it; refused if other layers read them too."""
        layer = dict(graph.model.named_modules())[name]
        for group in groups:
            slices = [
                s for s in group.consumers
                if s.module is layer and s.name == 'weight'
            ]
            if not slices:
                continue
            others = sorted({
                graph.names[s.module]
                for s in group.consumers if s.module is not layer
            })
            if others:
                raise ValueError(
                    f'DCPSelectionLoop: the input channels of {name} are also '
                    f'read by {others[:4]} (a residual stream or a concat, '
                    f'from {group.name}); DCP prunes channels that one layer '
                    'reads, e.g. the inside of a residual block')
            return group, slices[0]
        raise ValueError(
            f'DCPSelectionLoop: the input channels of {name} are not '
            'produced by a prunable layer (the image, or a layer outside the '
            'traced model); leave it out of layers')

    def _plan(self, model: DCPClassifier,
              inputs: torch.Tensor) -> List[Tuple[str, Optional[int]]]:
        """The layers in forward order, each with the index of the first
        auxiliary point after it (``None``: the final classifier)."""
        layers = named(model, self.layers, 'layers')
        points = named(model, model.aux_points, 'aux_points')
        with torch.no_grad():
            order = completion_order(layers + points,
                                     lambda: model(inputs, mode='tensor'))
        layer_order, point_order = order[:len(layers)], order[len(layers):]
        missing = [n for n, o in zip(self.layers, layer_order) if o < 0]
        missing += [n for n, o in zip(model.aux_points, point_order) if o < 0]
        if missing:
            raise ValueError('DCPSelectionLoop: the forward pass never runs '
                             f'{missing}')
        plan = []
        for position, name in sorted(zip(layer_order, self.layers)):
            after = [(o, k) for k, o in enumerate(point_order)
                     if o >= position]
            plan.append((name, min(after)[1] if after else None))
        return plan

    # --- running --------------------------------------------------------

    def run(self) -> nn.Module:
        check_pruning_stage(
            self.runner, 'DCPSelectionLoop',
            'the stage-1 checkpoint (the trained DCPClassifier)',
            'selection is greedy and sequential')
        runner = self.runner
        model: DCPClassifier = unwrap(runner.model)
        if self._epoch >= self.max_epochs:
            # resumed from the selection's result (as mmengine's loops, a
            # finished run resumes to no work; selecting again would cut
            # the already pruned layers)
            runner.logger.info('DCPSelectionLoop: resumed from the finished '
                               'selection, nothing left to select')
            runner.call_hook('before_train')
            runner.call_hook('after_train')
            return runner.model
        if self.ignored_max_epochs is not None:
            runner.logger.info(
                f'DCPSelectionLoop: max_epochs={self.ignored_max_epochs} '
                'ignored (selection is one pass over the layers)')
        model.eval()  # BN statistics frozen, as in the paper's code
        requires_grad = {
            n: p.requires_grad
            for n, p in model.named_parameters()
        }
        original = copy.deepcopy(model).requires_grad_(False)
        batches = self._batches(model)
        inputs = next(batches)[0]
        forward = trace_forward(model)
        graph = ChannelGraph(model, inputs[:2], forward)
        plan = self._plan(model, inputs)
        groups = graph.groups()  # every layer is checked before any work
        self._max_iters = sum(
            self._keep(self._input_group(graph, groups, name)[0].num_channels)
            for name, _ in plan)
        flops, _ = measure_flops(model, inputs[:1], forward)
        params = _classifier_params(model)
        runner.call_hook('before_train')
        runner.call_hook('before_train_epoch')
        runner.logger.info(
            f'DCP channel selection: {len(plan)} layers, pruning rate '
            f'{self.pruning_rate:g}, {self._max_iters} channels to select, '
            f'{self.grad_batches} batches per gradient pass, '
            f'{self.sub_steps} sub-problem steps per channel')
        for name, point in plan:
            self._select(model, original, graph, name, point, batches)
        del original
        model.drop_aux_heads()
        for n, p in model.named_parameters():
            p.requires_grad_(requires_grad[n])
        pruned_flops, _ = measure_flops(model, inputs[:1], forward)
        runner.logger.info(
            f'DCP pruned: params {params} -> {_classifier_params(model)}, '
            f'FLOPs {flops} -> {pruned_flops} '
            f'({pruned_flops / flops:.1%}) at input '
            f'{tuple(inputs.shape[1:])}')
        runner.call_hook('after_train_epoch')
        self._epoch += 1
        if runner.val_loop is not None:
            runner.val_loop.run()
        runner.call_hook('after_train')
        return runner.model

    def _select(self, model: DCPClassifier, original: nn.Module,
                graph: ChannelGraph, name: str, point: Optional[int],
                batches) -> None:
        """Select and remove the input channels of one layer."""
        runner = self.runner
        group, weight = self._input_group(graph, graph.groups(), name)
        total = group.num_channels
        keep = self._keep(total)
        head = 'final classifier' if point is None else \
            f'aux head {point} ({model.aux_points[point]})'
        if keep == total:
            runner.logger.info(f'DCP {name}: keeps all {total} channels')
            return
        model.requires_grad_(False)
        objective = layer_objective(model, original, name, point, batches,
                                    self.mse_weight, self.ce_weight)
        selection = GreedyChannelSelection(weight, total, objective,
                                           self.grad_batches, self.sub_steps,
                                           self.optimizer, self.warm_start,
                                           name)
        start, stats, blind = time.perf_counter(), {}, 0
        while len(selection.selected) < keep:
            runner.call_hook(
                'before_train_iter', batch_idx=self._iter, data_batch=None)
            stats = selection.step()
            blind += stats['score'] == 0
            outputs = {
                k: v
                for k, v in stats.items() if k.startswith('loss')
            }
            runner.call_hook(
                'after_train_iter',
                batch_idx=self._iter,
                data_batch=None,
                outputs=outputs)
            self._iter += 1
        remove_channels(graph, group, selection.unselected(),
                        optimizers(runner))
        if blind:
            runner.logger.warning(
                f'DCP {name}: {blind} channels were added with a zero '
                'gradient (dead inputs?), so in index order, not by merit')
        losses = ', '.join(f'{k} {v:.4f}' for k, v in stats.items()
                           if k.startswith('loss'))
        runner.logger.info(
            f'DCP {name}: kept {keep}/{total} input channels '
            f'{sorted(selection.selected)} with {head}; last sub-problem '
            f'{losses or "not solved (sub_steps=0)"}; '
            f'{time.perf_counter() - start:.1f}s')
