"""A checkpoint's architecture record is checked before it is obeyed.

Each case of issue 16 goes through a real entry point (``tools/test.py``,
``load_from``, :func:`prunedet.apis.init_model`) and must be refused in
seconds, naming the file, the layer and the field; a generated test mutates
a real pruned checkpoint's record: every mutation loads exactly or is
refused, and none allocates more than the unpruned model.
"""
import copy
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmengine.config import Config

from conftest import config_path
from prunedet.apis import init_model
from prunedet.engine.hooks import ProgressivePruningHook
from prunedet.pruning.architecture import (record_architecture,
                                           restore_architecture)
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.record_schema import ArchitectureRecordError
from prunedet.pruning.structures import replace_block
from prunedet.pruning.surgery import remove_channels
from prunedet.pruning.tracing import tensor_forward
from runner_utils import build_runner, small_cfg
from test_tools_and_readme import load_tool

LENET = config_path('classification', 'lenet5_mnist_rpgp.py')
RESNET = config_path('classification', 'resnet20_mnist.py')
QUICK = [
    'train_cfg.max_epochs=1', 'train_dataloader.num_workers=0',
    'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0'
]
SECONDS = 20  # a refusal reads the record, it allocates nothing


def pruned(config: str, blocks=()) -> dict:
    """A checkpoint of the config's model, pruned with prunedet's APIs:
    ``blocks`` replaced by their shortcut, a third of the channels of
    every group removed."""
    model = init_model(Config.fromfile(config))
    for name in blocks:
        replace_block(model, name, 'downsample', 'relu')
    graph = ChannelGraph(model, torch.randn(2, 1, 32, 32), tensor_forward,
                         ('backbone', ))
    for name in [g.name for g in graph.groups()]:
        group = next(g for g in graph.groups() if g.name == name)
        remove_channels(graph, group, list(range(group.num_channels // 3)))
    return dict(
        state_dict=model.state_dict(),
        architecture=record_architecture(model),
        pruning=ProgressivePruningHook().state_dict(),
        meta=dict())


@pytest.fixture(scope='module')
def lenet():
    return pruned(LENET)


def edited(ckpt: dict, path, edit) -> str:
    ckpt = copy.deepcopy(ckpt)
    edit(ckpt)
    torch.save(ckpt, str(path))
    return str(path)


def attribute(name, **values):
    return lambda c: c['architecture']['attributes'].setdefault(
        name, {}).update(values)


def channels(name, counts):
    return lambda c: c['architecture']['channels'].update({name: counts})


# (edit, layer, field) of every case issue 16 lists
CASES = {
    'huge out_channels': (attribute('backbone.features.0', out_channels=10**9),
                          'backbone.features.0', 'attributes.out_channels'),
    'huge padding': (attribute('backbone.features.0', padding=[20000, 20000]),
                     'backbone.features.0', 'attributes.padding'),
    'forward': (attribute('backbone', forward='pwn'), 'backbone',
                'attributes.forward'),
    '__dict__': (attribute('backbone', __dict__={}), 'backbone',
                 'attributes.__dict__'),
    'zero channels': (channels('backbone.features.0', [1, 0]),
                      'backbone.features.0', 'channels.out'),
    'negative channels': (channels('backbone.features.3', [1, -3]),
                          'backbone.features.3', 'channels.out'),
    'string channels': (channels('backbone.classifier.0', ['120', 84]),
                        'backbone.classifier.0', 'channels.in'),
    'float channels': (channels('backbone.features.0', [1, 4.0]),
                       'backbone.features.0', 'channels.out'),
    'short list': (channels('backbone.features.0', [1]),
                   'backbone.features.0', 'channels'),
    'a Sequential removed': (
        lambda c: c['architecture'].update(
            removed=[dict(kind='block', name='backbone.features')]),
        'backbone.features', 'removed[0]'),
    'pruning finished "no"': (lambda c: c['pruning'].update(finished='no'),
                              None, 'pruning.finished'),
    'unknown key': (lambda c: c['architecture'].update(arch_v2={}), None,
                    'architecture'),
}


def refused(run, path, layer, field):
    start = time.perf_counter()
    with pytest.raises(ArchitectureRecordError) as info:
        run()
    assert time.perf_counter() - start < SECONDS
    message = str(info.value)
    assert path in message and f'field {field!r}' in message, message
    assert layer is None or f'layer {layer!r}' in message, message


def test_tools_test_refuses_a_huge_record_and_tests_the_real_one(
        tmp_path, lenet, mnist_root):
    test = load_tool('test')
    common = ['--data-root', mnist_root, '--work-dir', str(tmp_path / 'w'),
              '--cfg-options', *QUICK]
    edit, layer, field = CASES['huge out_channels']
    path = edited(lenet, tmp_path / 'huge.pth', edit)
    refused(lambda: test.main([LENET, path, *common]), path, layer, field)
    path = edited(lenet, tmp_path / 'real.pth', lambda c: None)
    assert 'accuracy/top1' in test.main([LENET, path, *common])


def test_every_record_case_of_the_issue_is_refused_by_the_runner(
        tmp_path, lenet, mnist_root):
    """``PruningRunner.load_checkpoint`` (tools/test.py, ``load_from``,
    ``--resume``): each case is refused, the model is left as built, and
    the same runner then loads the real checkpoint."""
    runner = build_runner(small_cfg('classification/lenet5_mnist_rpgp.py',
                                    tmp_path / 'w', mnist_root))
    shapes = {k: v.shape for k, v in runner.model.state_dict().items()}
    for case, (edit, layer, field) in CASES.items():
        path = edited(lenet, tmp_path / 'edited.pth', edit)
        refused(lambda: runner.load_checkpoint(path), path, layer, field)
        assert shapes == {
            k: v.shape for k, v in runner.model.state_dict().items()}, case
    runner.load_checkpoint(edited(lenet, tmp_path / 'real.pth',
                                  lambda c: None))
    assert record_architecture(runner.model) == lenet['architecture']


def test_load_from_and_init_model_refuse_naming_the_file(
        tmp_path, lenet, mnist_root):
    edit, layer, field = CASES['huge out_channels']
    path = edited(lenet, tmp_path / 'huge.pth', edit)
    refused(lambda: load_tool('train').main([
        LENET, '--data-root', mnist_root, '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', *QUICK, f'load_from={path}'
    ]), path, layer, field)
    edit, layer, field = CASES['a Sequential removed']
    path = edited(lenet, tmp_path / 'seq.pth', edit)
    refused(lambda: init_model(LENET, path), path, layer, field)


def test_a_refused_record_leaves_the_model_untouched(lenet):
    cfg = Config.fromfile(LENET)
    for case, (edit, layer, field) in CASES.items():
        ckpt = copy.deepcopy(lenet)
        edit(ckpt)
        if field.startswith('pruning'):
            with pytest.raises(ArchitectureRecordError, match=field):
                ProgressivePruningHook().load_state_dict(ckpt['pruning'])
            continue
        model = init_model(cfg)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        attributes = {n: dict(vars(m)) for n, m in model.named_modules()}
        with pytest.raises(ArchitectureRecordError):
            restore_architecture(model, ckpt['architecture'])
        after = model.state_dict()
        assert before.keys() == after.keys(), case
        assert all(torch.equal(before[k], after[k]) for k in before), case
        assert attributes == {
            n: dict(vars(m))
            for n, m in model.named_modules()
        }, case


def test_an_empty_checkpoint_is_named(tmp_path, mnist_root):
    path = tmp_path / 'epoch_3.pth'
    path.write_bytes(b'')
    with pytest.raises(EOFError, match=f'{path}.*empty/truncated'):
        load_tool('test').main([
            LENET, str(path), '--data-root', mnist_root, '--work-dir',
            str(tmp_path / 'w'), '--cfg-options', *QUICK
        ])


# --- fuzzed records ----------------------------------------------------

JUNK = st.one_of(
    st.integers(-3, 3), st.integers(10**6, 10**15),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.booleans(), st.none(), st.lists(st.integers(-2, 70), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-1, 5), max_size=2))
ATTRS = ['forward', '__dict__', 'padding', 'training', 'in_channels',
         'out_channels', 'weight', 'inplanes']
TOP = {'architecture', 'channels', 'attributes', 'scales', 'removed'}


@pytest.fixture(scope='module')
def resnet(tmp_path_factory):
    """A pruned ResNet-20 with a block removed, its file, the unpruned
    parameter count and the names of its modules."""
    ckpt = pruned(RESNET, blocks=['backbone.layer2.1'])
    fresh = init_model(Config.fromfile(RESNET))
    return dict(
        ckpt=ckpt,
        path=str(tmp_path_factory.mktemp('fuzz') / 'mutated.pth'),
        cfg=Config.fromfile(RESNET),
        params=sum(p.numel() for p in fresh.parameters()),
        names=[n for n, _ in fresh.named_modules() if n])


def _value(data, old):
    """A new value for a count: junk, or a near, negated, huge, float,
    string or boolean version of it."""
    if not isinstance(old, int):
        return data.draw(JUNK)
    return data.draw(st.sampled_from([
        old + 1, old - 1, -old, old * 10**6, float(old), str(old), True,
        old + 2, max(old - 2, 0)
    ]) | JUNK)


def _mutate(data, record: dict, names, harmless: bool = False) -> bool:
    """Apply one random mutation (``harmless``: one that keeps the record
    valid); True if it changed a removal (a block's layers may then stay
    whose weights the file lacks)."""
    layer = st.sampled_from(names) | st.text(max_size=6)
    kind = 'harmless' if harmless else data.draw(st.sampled_from(
        ['channel', 'entry', 'attribute', 'removed', 'top']))
    part = {'channel': 'channels', 'entry': 'channels',
            'harmless': 'channels', 'attribute': 'attributes',
            'removed': 'removed'}.get(kind)
    if part and not isinstance(record.get(part, {} if part != 'removed'
                                          else []),
                               dict if part != 'removed' else list):
        kind = 'top'  # an earlier mutation replaced it by junk
    if kind in ('channel', 'entry', 'harmless') and not record['channels']:
        kind = 'top'
    if kind == 'harmless':  # what a valid record may look like too
        how = data.draw(st.sampled_from(
            ['tuple', 'narrower attribute', 'no activation', 'none']))
        name = data.draw(st.sampled_from(sorted(record['channels'])))
        attributes = record.get('attributes')
        if how == 'tuple' and isinstance(record['channels'][name], list):
            record['channels'][name] = tuple(record['channels'][name])
        elif how == 'narrower attribute' and isinstance(attributes, dict) \
                and isinstance(attributes.get('backbone.layer3.1'), dict):
            found = attributes['backbone.layer3.1']
            found['mid_channels'] = data.draw(st.integers(1, 64))
        elif how == 'no activation' and isinstance(
                record.get('removed'), list) and record['removed'] and \
                isinstance(record['removed'][0], dict):
            record['removed'][0]['activation'] = None
        return False
    if kind == 'channel':
        name = data.draw(st.sampled_from(sorted(record['channels'])))
        counts = record['channels'][name]
        if isinstance(counts, list) and len(counts) == 2:
            side = data.draw(st.integers(0, 1))
            counts = list(counts)
            counts[side] = _value(data, counts[side])
        else:
            counts = data.draw(JUNK)
        record['channels'][name] = counts
    elif kind == 'entry':
        how = data.draw(st.sampled_from(['drop', 'short', 'junk', 'add']))
        name = data.draw(st.sampled_from(sorted(record['channels'])))
        if how == 'drop':
            del record['channels'][name]
        elif how == 'short':
            record['channels'][name] = [1]
        elif how == 'junk':
            record['channels'][name] = data.draw(JUNK)
        else:
            record['channels'][data.draw(layer)] = data.draw(
                st.just([1, 1]) | JUNK)
    elif kind == 'attribute':
        attributes = record.setdefault('attributes', {})
        name = data.draw(st.sampled_from(sorted(attributes)) | layer)
        found = attributes.setdefault(name, {})
        if isinstance(found, dict) and found and data.draw(st.booleans()):
            attr = data.draw(st.sampled_from(sorted(found)))
            found[attr] = _value(data, found[attr])
        elif isinstance(found, dict):
            found[data.draw(st.sampled_from(ATTRS))] = data.draw(
                JUNK | st.just([20000, 20000]))
    elif kind == 'removed':
        removed = record.setdefault('removed', [])
        how = data.draw(st.sampled_from(['drop', 'add', 'edit']))
        if how == 'drop' and removed:
            removed.pop()
            return True
        if how == 'edit' and removed and isinstance(removed[0], dict):
            key = data.draw(st.sampled_from(
                ['kind', 'name', 'shortcut', 'activation', 'extra']))
            removed[0][key] = data.draw(layer | JUNK | st.sampled_from(
                ['block', 'branch', 'relu', 'downsample', 'conv1']))
            return True
        removed.append(
            dict(kind=data.draw(st.sampled_from(['block', 'branch', 'x'])),
                 name=data.draw(layer)))
    else:
        key = data.draw(st.sampled_from(
            ['channels', 'attributes', 'scales', 'removed', 'junk']))
        record[key] = data.draw(JUNK)
    return False


def _matches(model, record: dict) -> None:
    """The rebuilt model has what the record asked for."""
    got = record_architecture(model)
    for name, counts in record.get('channels', {}).items():
        assert got['channels'][name] == list(counts), name
    modules = dict(model.named_modules())
    for name, found in record.get('attributes', {}).items():
        for attr, value in found.items():
            have = getattr(modules[name], attr)
            assert list(have) == list(value) if isinstance(
                value, (list, tuple)) else have == value, (name, attr)
    assert {(r['kind'], r['name']) for r in got.get('removed', [])} == {
        (r['kind'], r['name']) for r in record.get('removed', [])}


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_record_loads_exactly_or_is_refused_naming_the_layer(
        resnet, data):
    ckpt = copy.deepcopy(resnet['ckpt'])
    record = ckpt['architecture']
    harmless = data.draw(st.booleans())
    removal_changed = False
    for _ in range(data.draw(st.integers(1, 3))):
        removal_changed |= _mutate(data, record, resnet['names'], harmless)
    torch.save(ckpt, resnet['path'])
    start = time.perf_counter()
    try:
        model = init_model(resnet['cfg'], resnet['path'])
    except ArchitectureRecordError as error:
        assert not harmless, f'a valid record was refused: {error}'
        assert resnet['path'] in str(error)
        assert error.layer is not None or error.field in TOP or \
            error.field.startswith('removed['), str(error)
    except RuntimeError as error:
        # the strict load: a block kept whose weights the file lacks
        assert removal_changed and not harmless
        assert 'does not fit the model' in str(error)
        assert resnet['path'] in str(error)
    else:
        assert sum(p.numel() for p in model.parameters()) <= \
            resnet['params']
        _matches(model, record)
        with torch.no_grad():
            assert model(torch.randn(1, 1, 32, 32),
                         mode='tensor').shape == (1, 10)
    assert time.perf_counter() - start < SECONDS


@pytest.mark.parametrize('layer,count', [('backbone.features.0', 10**9),
                                         ('backbone.nothing', 3)])
def test_a_pruning_state_wider_than_the_model_is_refused(
        tmp_path, lenet, mnist_root, layer, count):
    """``pruning.original`` sets how far each layer is pruned: 10**9 would
    leave it whole with pruning "finished"; a layer the model lacks is not
    this model's state."""
    runner = build_runner(small_cfg('classification/lenet5_mnist_rpgp.py',
                                    tmp_path / 'w', mnist_root))
    path = edited(lenet, tmp_path / 'wide.pth',
                  lambda c: c['pruning'].update(original={layer: count}))
    refused(lambda: runner.load_checkpoint(path), path, layer,
            'pruning.original')


def test_a_pruning_state_narrower_than_the_model_is_refused():
    """Fewer channels before pruning than the model has now would cut the
    layer far below its target: refused when the pruner is built."""
    from prunedet.criteria import L1Norm
    from prunedet.pruning.pruner import ChannelPruner
    model = init_model(Config.fromfile(LENET))
    graph = ChannelGraph(model, torch.randn(2, 1, 32, 32), tensor_forward,
                         ('backbone', ))
    original = {g.name: g.num_channels for g in graph.groups()}
    ChannelPruner(graph, L1Norm(), original=original)  # as saved: fine
    original['backbone.features.3'] = 10
    with pytest.raises(ValueError, match=r'pruning\.original.*'
                       r'backbone\.features\.3 \(10 < 16\)'):
        ChannelPruner(graph, L1Norm(), original=original)
