"""OpenMMLab's own CNNs pruned at generated settings (``hypothesis``).

``tests/test_openmmlab_models.py`` prunes each model once, at one setting.
Here the same promise is checked over generated settings: input size, FLOPs
target, number of steps, ``round_to``, criterion and global ranking. For each
setting the graph is built and verified as the hook does, the target is
either refused before anything is cut or reached in ``steps`` steps, and at
every step: the chosen channels masked to zero give the outputs of the model
with them removed, every attribute that mirrored a channel count still
does, and a training step runs. At the end the config's model, shrunk to the
checkpoint record, is the pruned model, and the measured FLOPs are within 2
points of the target.

The suite runs a fixed, derandomized set of examples on small models;
``tools/analysis/fuzz_models.py`` runs the same property (:func:`check`)
with more examples over every CNN config installed.
"""
import copy
import dataclasses
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from prunedet.criteria import (GradientNorm, L1Norm, L2Norm, Random,
                               TaylorWeight)
from prunedet.pruning.architecture import (record_architecture,
                                           restore_architecture)
from prunedet.pruning.flops import FlopsEstimate, measure_flops
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.pruner import ChannelPruner
from prunedet.pruning.soft import mask_channels
from prunedet.pruning.tracing import trace_forward
from prunedet.pruning.verify import verify_graph
from test_openmmlab_models import (CASES, Case, build, observe, samples,
                                  train_step)

CRITERIA: Dict[str, Callable] = {
    'L1Norm': L1Norm,
    'L2Norm': L2Norm,
    'Random': Random,
    'GradientNorm': GradientNorm,
    'TaylorWeight': TaylorWeight,
}
TOLERANCE = 0.02  # of the original FLOPs, as in test_openmmlab_models


@dataclasses.dataclass(frozen=True)
class Setting:
    size: int
    ratio: float
    steps: int
    round_to: int
    criterion: str
    global_ranking: bool


def settings_for(case: Case, sizes=None) -> st.SearchStrategy:
    """Settings around a model's tested one: sizes a multiple of 32 (the
    stride of the detectors' deepest level) up to twice the tested size."""
    if sizes is None:
        sizes = st.sampled_from(sorted({32 * k for k in range(
            max(1, case.size // 64), case.size // 16 + 1)} | {case.size}))
    return st.builds(
        Setting,
        size=sizes,
        ratio=st.sampled_from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
        steps=st.integers(1, 3),
        round_to=st.sampled_from([1, 2, 4, 8]),
        criterion=st.sampled_from(sorted(CRITERIA)),
        global_ranking=st.booleans())


_BUILT: Dict[tuple, nn.Module] = {}


def pristine(case: Case) -> nn.Module:
    """The config's model, built once (callers copy it); one model at a
    time is kept, they are large."""
    key = (case.config, repr(case.options))
    if key not in _BUILT:
        _BUILT.clear()
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            _BUILT[key] = build(case, Path(tmp))
    return _BUILT[key]


def _close(masked, pruned, what: str) -> None:
    assert [t.shape for t in masked] == [t.shape for t in pruned], what
    scale = max(a.abs().max().item() for a in masked)
    error = max((a - b).abs().max().item() for a, b in zip(pruned, masked))
    assert error <= 1e-4 * scale + 1e-5, f'{what}: off by {error:.3g} ' \
        f'(largest output {scale:.3g})'


def check(case: Case, setting: Setting,
          model: Optional[nn.Module] = None) -> dict:
    """Prune a copy of ``model`` (default: the config's) at ``setting`` and
    check every promise (AssertionError naming the step otherwise).
    Returns what happened: ``refused`` (an unreachable target, refused
    before any cut), the measured FLOPs ratio, groups pruned and kept."""
    base = pristine(case) if model is None else model
    model = copy.deepcopy(base)
    torch.manual_seed(0)
    x = torch.randn(case.batch, 3, setting.size, setting.size)
    forward = trace_forward(model)
    graph = ChannelGraph(model, x, forward, case.prunable)
    verify_graph(graph, x[:1], forward)
    result = dict(groups=len(graph.roots), kept=len(graph.unprunable))
    if not graph.roots:
        return dict(result, refused='no prunable groups')
    total, per_layer = measure_flops(model, x[:1], forward)
    criterion = CRITERIA[setting.criterion]()
    pruner = ChannelPruner(
        graph, criterion, target='flops', round_to=setting.round_to,
        global_ranking=setting.global_ranking,
        flops=FlopsEstimate(total, per_layer, graph.groups()))
    try:
        pruner.check(setting.ratio)
    except ValueError as error:  # UnreachableTargetError, round_to > width
        return dict(result, refused=str(error).split(':')[0])
    data = samples(case, model, x)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    for k in range(setting.steps):
        what = f'step {k + 1}/{setting.steps}'
        train_step(model, x, data, optimizer,
                   lambda: criterion.commit(pruner.groups))  # as the hook
        ratio = setting.ratio * (k + 1) / setting.steps
        last = k + 1 == setting.steps
        decision = pruner.decide(ratio, last, pruner.scores())
        assert not decision.get('postponed'), (what, decision)
        for g in pruner.groups:  # hard pruning: all selected go
            chosen = decision['groups'][g.name][1]
            mask_channels(g, torch.as_tensor(chosen, dtype=torch.long))
        masked, agreed = observe(forward, model, x)
        pruner.apply(ratio, decision, [optimizer])
        pruned, after = observe(forward, model, x)
        _close(masked, pruned, f'{what}: removed is not masked')
        lost = sorted(set(agreed) - set(after))
        assert not lost, f'{what}: attributes out of step: {lost[:5]}'
    rebuilt = copy.deepcopy(base)
    restore_architecture(rebuilt, record_architecture(model))
    rebuilt.load_state_dict(model.state_dict())  # strict
    again, _ = observe(forward, rebuilt, x)
    assert all(torch.equal(a, b) for a, b in zip(again, pruned)), \
        'the record does not rebuild the pruned model'
    loss = train_step(model, x, data, optimizer)
    assert torch.isfinite(torch.tensor(loss)), 'training diverged'
    measured, _ = measure_flops(model, x[:1], forward)
    flops = measured / total
    assert abs(flops - (1 - setting.ratio)) <= TOLERANCE, \
        f'FLOPs {flops:.1%} of the original for a {setting.ratio:.0%} target'
    return dict(result, flops=flops)


def _hypothesis(max_examples: int):
    return settings(max_examples=max_examples, derandomize=True,
                    deadline=None, database=None, print_blob=False,
                    phases=(Phase.explicit, Phase.generate),  # no shrinking
                    suppress_health_check=list(HealthCheck))


# The regressions the fixed matrix missed, then derandomized examples on
# small inputs: the file adds about a minute to the suite on an idle machine.
@example(Setting(64, 0.4, 2, 1, 'L1Norm', False))  # crashed at step 2
@example(Setting(64, 0.5, 3, 2, 'GradientNorm', True))
@given(setting=settings_for(CASES['shufflenet-v2'], st.just(64)))
@_hypothesis(max_examples=1)
def test_shufflenet_v2_any_setting(setting):
    result = check(CASES['shufflenet-v2'], setting)
    assert 'refused' not in result, result


# more models and examples: tools/analysis/fuzz_models.py (RTMDet-tiny, the
# slowest here, is left to it: the fixed matrix prunes it every run)
EXAMPLES = {'mobilenet-v2': 2, 'efficientnet-b0': 1, 'resnet50': 1,
            'fcos': 2}


@pytest.mark.parametrize('name', list(EXAMPLES))
def test_openmmlab_cnn_any_setting(name):
    case = CASES[name]

    @given(setting=settings_for(case, st.just(case.size)))
    @_hypothesis(max_examples=EXAMPLES[name])
    def run(setting):
        check(case, setting)

    run()
