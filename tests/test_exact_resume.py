"""A resumed run equals the uninterrupted one bit for bit, whatever draws
random numbers (issue 16): every soft mode, criteria, global ranking with
recovery, epoch- and iteration-based loops, random pairs and dropout."""
import glob
import random
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from prunedet.engine import random_state
from prunedet.engine.checkpoints import load_file
from prunedet.engine.hooks import ProgressivePruningHook, RandomStateHook
from prunedet.pruning.soft import SOFT_MODES
from runner_utils import RecordLossHook, build_runner, small_cfg
from test_domain_adaptation import office_root, tiny_cfg  # noqa: F401

LENET = 'classification/lenet5_mnist_rpgp.py'


@pytest.fixture(scope='module', autouse=True)
def _unformatted_config_text():
    """mmengine formats the config with yapf for the log and for every
    checkpoint, half a second each: these runs keep the plain text."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr('mmengine.config.config.FormatCode',
                      lambda text, **kwargs: (text, False))
        yield


def assert_same(got, want, where='checkpoint'):
    """Equal in every tensor bit, key and value."""
    if torch.is_tensor(want):
        assert torch.is_tensor(got) and got.dtype == want.dtype \
            and got.shape == want.shape and torch.equal(got, want), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), \
            (where, set(got) ^ set(want))
        for k in want:
            assert_same(got[k], want[k], f'{where}.{k}')
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f'{where}[{i}]')
    else:
        assert got == want, (where, got, want)


def lenet_cfg(work_dir, data_root, by_epoch, soft_mode, criterion,
              global_ranking):
    """LeNet-5 RPGP on 256 images in batches of 32: 8 iterations an epoch,
    a pruning step every 3 (soft, then hard), random flips (numpy),
    validation after each checkpoint; by epochs (3) or iterations (24)."""
    pipeline = [
        dict(type='Resize', scale=32),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')
    ]
    cfg = small_cfg(LENET, work_dir, data_root, **{
        'train_dataloader.dataset.pipeline': pipeline,
        'train_dataloader.dataset.serialize_data': False,
        'val_dataloader.dataset.serialize_data': False
    })
    cfg.custom_hooks = [
        dict(cfg.custom_hooks[0], interval=3, end=0.8, soft_steps=2,
             target_ratio=0.6, soft_mode=soft_mode,
             criterion=dict(type=criterion), global_ranking=global_ranking),
        dict(type='RecordLossHook')
    ]
    if not by_epoch:
        cfg.train_cfg = dict(by_epoch=False, max_iters=24, val_interval=8)
        cfg.default_hooks.checkpoint.update(by_epoch=False, interval=8)
        cfg.param_scheduler = dict(type='ConstantLR', factor=1.,
                                   by_epoch=False)
        cfg.log_processor = dict(by_epoch=False)
    return cfg


def run(cfg, resume_from=None):
    """Train; return the losses of every iteration, keyed by iteration."""
    if resume_from:
        cfg.resume, cfg.load_from = True, resume_from
    RecordLossHook.outputs.clear()
    build_runner(cfg).train()
    return dict(RecordLossHook.outputs)


def assert_resumes_exactly(make_cfg, work, resume_at, last):
    """Run once whole, then from checkpoint ``resume_at``: the iterations
    after it and the last checkpoint (weights, optimizer, pruning state
    and masks, random state) agree bit for bit. Returns the whole run's
    log."""
    full = run(make_cfg(work / 'full'))
    resumed = run(make_cfg(work / 'resumed'),
                  str(work / 'full' / f'{resume_at}.pth'))
    assert resumed and min(resumed) > 0
    assert resumed == {i: full[i] for i in resumed}
    assert max(resumed) == max(full)
    want = load_file(str(work / 'full' / f'{last}.pth'))
    got = load_file(str(work / 'resumed' / f'{last}.pth'))
    for key in ('state_dict', 'optimizer', 'pruning', 'random_state',
                'architecture'):
        assert_same(got.get(key), want.get(key), key)
    return open(glob.glob(str(work / 'full' / '*' / '*.log'))[0]).read()


@pytest.mark.parametrize('soft_mode', SOFT_MODES)
@settings(max_examples=1, deadline=None, derandomize=True, database=None)
@given(criterion=st.sampled_from(['GradientNorm', 'L1Norm', 'Random']),
       global_ranking=st.booleans(), by_epoch=st.booleans(),
       resume_at=st.integers(1, 2))
@example(criterion='GradientNorm', global_ranking=True, by_epoch=True,
         resume_at=1)  # soft_mode='mask': masks are released after it
def test_resume_equals_the_uninterrupted_run(tmp_path_factory, mnist_root,
                                             soft_mode, criterion,
                                             global_ranking, by_epoch,
                                             resume_at):
    def make_cfg(work):
        return lenet_cfg(work, mnist_root, by_epoch, soft_mode, criterion,
                         global_ranking)

    unit = 'epoch' if by_epoch else 'iter'
    scale = 1 if by_epoch else 8
    log = assert_resumes_exactly(make_cfg, tmp_path_factory.mktemp('run'),
                                 f'{unit}_{resume_at * scale}',
                                 f'{unit}_{3 * scale}')
    if soft_mode == 'mask' and criterion == 'GradientNorm' \
            and global_ranking and resume_at == 1:
        # masked channels were released (fresh weights) after the resume
        assert re.search(r'iter (9|1[0-9])\): .* [1-9]\d* soft-pruned '
                         'recovered', log)


def test_adaptation_with_random_pairs_and_dropout_resumes_exactly(
        tmp_path, office_root):
    """The DA VGG (dropout: torch) on random source/target pairs (numpy),
    pruned by iterations: an IterBasedTrainLoop replays the fetches of the
    batches it trained on and still continues bit for bit."""

    def make_cfg(work):
        cfg = tiny_cfg('rpgp', work, office_root, max_iters=6)
        cfg.custom_hooks[0].update(interval=2, soft_steps=1,
                                   soft_mode='reinit')
        cfg.custom_hooks.append(dict(type='RecordLossHook'))
        cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=-1)
        cfg.train_cfg.val_interval = 2
        return cfg

    assert_resumes_exactly(make_cfg, tmp_path, 'iter_2', 'iter_6')


# --- the pieces ---------------------------------------------------------


def draws(generator):
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)],
            torch.rand(3, generator=generator).tolist())


def test_random_state_is_plain_data_and_restores_every_generator(tmp_path):
    own = torch.Generator().manual_seed(5)
    state = random_state.capture({'hook': own})
    expected = draws(own)
    torch.save(state, str(tmp_path / 'state.pth'))
    loaded = load_file(str(tmp_path / 'state.pth'))  # weights_only=True
    assert random_state.restore(loaded, {'hook': own, 'new': own}) == ['new']
    assert draws(own) == expected


class _Runner(SimpleNamespace):
    """What the hook reads of a runner, in a run of one process."""

    def __init__(self, logged, **kwargs):
        super().__init__(
            iter=8, train_loop=None, train_dataloader=None,
            logger=SimpleNamespace(warning=logged.append), **kwargs)


def test_other_world_sizes_old_and_broken_checkpoints():
    logged = []
    runner, hook = _Runner(logged), RandomStateHook()
    saved = [random_state.capture() for _ in range(2)]
    expected = draws(None)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    hook.after_load_checkpoint(runner, {'random_state': {'ranks': saved}})
    hook.before_train(runner)
    assert 'random state of 2 processes and this run has 1' in logged[-1]
    hook.before_train_epoch(runner)
    assert draws(None) == expected  # rank 0's state

    hook.after_load_checkpoint(runner, {})  # written before this change
    hook.before_train(runner)
    assert 'holds no random state' in logged[-1]

    broken = dict(saved[0], numpy=dict(saved[0]['numpy'], keys=[1, 2]))
    hook.after_load_checkpoint(runner, {'random_state': {'ranks': [broken]}})
    with pytest.raises(ValueError, match=r'random_state\.ranks\[0\]'):
        hook.before_train(runner)


def test_an_absurd_input_shape_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r'input_shape=\[1, 60000, 60000\]'):
        ProgressivePruningHook(input_shape=[1, 60000, 60000])
    ProgressivePruningHook(input_shape=[3, 1333, 800])  # a detector's


def test_resume_without_a_seed_keeps_the_data_order(tmp_path_factory,
                                                    mnist_root):
    """``randomness.seed=None`` (mmengine draws one): the dataloader is
    built before the checkpoint is loaded, so its sampler took the resumed
    run's new seed; the checkpoint's sampler seed puts the order back."""

    def make_cfg(work):
        cfg = lenet_cfg(work, mnist_root, True, 'reinit', 'GradientNorm',
                        True)
        cfg.randomness = dict(seed=None)
        return cfg

    assert_resumes_exactly(make_cfg, tmp_path_factory.mktemp('unseeded'),
                           'epoch_1', 'epoch_3')
