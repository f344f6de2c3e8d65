"""GAL inside the Runner: resume, the three stages through the tools, a
pruned checkpoint with removed blocks in the fine-tune stage."""
import os.path as osp

import pytest
import torch
from mmpretrain.registry import MODELS

from conftest import config_path
from models import CLASSIFIERS, randomize_bn
from runner_utils import RecordLossHook, build_runner, small_cfg
from test_gal import BLOCKS, one_thread_in_mmpretrain, set_masks  # noqa: F401
from test_tools_and_readme import load_tool
from prunedet.engine.hooks import GALRemovalHook
from prunedet.gal import remove_masked_structures
from prunedet.pruning.architecture import record_architecture

GAL_LENET = 'gal/lenet5_mnist_gal-0.01.py'


@pytest.fixture(scope='module')
def baseline(tmp_path_factory, mnist_root):
    """A LeNet-5 baseline checkpoint (one short epoch on small data)."""
    work = tmp_path_factory.mktemp('gal_baseline')
    cfg = small_cfg('gal/lenet5_mnist_gal_baseline.py', work, mnist_root,
                    **{'train_cfg.max_epochs': 1})
    build_runner(cfg).train()
    return osp.join(str(work), 'epoch_1.pth')


def gal_cfg(work, mnist_root, baseline, **options):
    cfg = small_cfg(GAL_LENET, work, mnist_root, **{
        'load_from': baseline,
        'train_cfg.max_epochs': 2,
        'optim_wrapper.masks.optimizer.sparsity': 0.5,
        **options
    })
    cfg.custom_hooks.append(dict(type='RecordLossHook'))
    return cfg


def test_resume_mid_gal_continues_bit_exactly(tmp_path, mnist_root,
                                              baseline):
    """All three optimizers, the mask schedule and the noise's generator
    are restored: the iterations after the resume log exactly what the
    uninterrupted run logged, and the pruned result is the same."""
    RecordLossHook.outputs.clear()
    build_runner(gal_cfg(tmp_path, mnist_root, baseline)).train()
    full = dict(RecordLossHook.outputs)
    pruned = torch.load(osp.join(str(tmp_path), 'epoch_2.pth'),
                        weights_only=True)

    cfg = gal_cfg(tmp_path / 'resumed', mnist_root, baseline)
    cfg.resume, cfg.load_from = True, osp.join(str(tmp_path), 'epoch_1.pth')
    RecordLossHook.outputs.clear()
    build_runner(cfg).train()
    resumed = dict(RecordLossHook.outputs)
    assert min(resumed) == 8  # 256 images in batches of 32 per epoch
    assert set(resumed) == set(range(8, 16))
    for it in resumed:
        assert resumed[it] == full[it], it  # every loss, bit for bit
    assert full[15]['zero_filters'] > full[0]['zero_filters']
    again = torch.load(osp.join(str(tmp_path / 'resumed'), 'epoch_2.pth'),
                       weights_only=True)
    assert again['architecture'] == pruned['architecture']
    for key, value in pruned['state_dict'].items():
        assert torch.equal(again['state_dict'][key], value), key
    assert again['meta']['gal'] == pruned['meta']['gal']


def test_a_config_naming_a_missing_structure_fails_before_training(
        tmp_path, mnist_root, baseline):
    cfg = gal_cfg(tmp_path, mnist_root, baseline, **{
        'model.structures': [dict(kind='filter',
                                  names=['backbone.features.1',
                                         'backbone.features.99'])]
    })
    with pytest.raises(ValueError, match=r"\['backbone.features.99'\]"):
        build_runner(cfg)
    cfg = gal_cfg(tmp_path, mnist_root, None)
    with pytest.raises(RuntimeError, match='set load_from'):
        build_runner(cfg).train()
    assert not list(tmp_path.glob('*.pth'))


def test_three_stages_with_the_tools(tmp_path, mnist_root, baseline):
    """GAL's result and its fine-tuned model load strictly in the plain
    fine-tune config, and tools/test.py scores what validation scored."""
    options = [
        'train_dataloader.batch_size=32', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'train_cfg.max_epochs=1', f'experiment_name=gal_{id(tmp_path)}'
    ]
    train, test = load_tool('train').main, load_tool('test').main
    finetune = config_path('gal', 'lenet5_mnist_gal-0.01_finetune.py')

    def run(config, stage, *extra):
        work = str(tmp_path / stage)
        runner = train([config, '--data-root', mnist_root, '--work-dir',
                        work, '--cfg-options', *options, *extra])
        val = runner.message_hub.get_scalar('val/accuracy/top1').current()
        return val, osp.join(work, 'epoch_1.pth')

    val, pruned = run(config_path(*GAL_LENET.split('/')), 'gal',
                      f'load_from={baseline}',
                      'optim_wrapper.masks.optimizer.sparsity=1.0')
    ckpt = torch.load(pruned, weights_only=True)
    assert not [k for k in ckpt['state_dict']
                if k.split('.')[0] in ('teacher', 'discriminator', 'masks',
                                       'noise')]
    kept = ckpt['meta']['gal']['filters']
    assert any(k < t for k, t in kept.values())
    assert ckpt['state_dict']['backbone.features.3.weight'].shape[0] == \
        kept['backbone.features.3'][0]
    metrics = test([finetune, pruned, '--data-root', mnist_root,
                    '--work-dir', str(tmp_path / 'test_gal'),
                    '--cfg-options', *options])
    assert metrics['accuracy/top1'] == pytest.approx(val, abs=1e-6)
    # the pruned result is not a GAL training state
    with pytest.raises(RuntimeError, match='pruned result'):
        GALRemovalHook().after_load_checkpoint(None, ckpt)

    val, tuned = run(finetune, 'finetune', f'load_from={pruned}')
    metrics = test([finetune, tuned, '--data-root', mnist_root,
                    '--work-dir', str(tmp_path / 'test_ft'),
                    '--cfg-options', *options])
    assert metrics['accuracy/top1'] == pytest.approx(val, abs=1e-6)
    state = torch.load(tuned, weights_only=True)['state_dict']
    for key, value in ckpt['state_dict'].items():
        assert state[key].shape == value.shape, key


def test_removed_blocks_in_the_fine_tune_stage(tmp_path, mnist_root):
    """A checkpoint whose blocks became shortcuts: the fine-tune runner
    rebuilds them, its optimizer holds exactly the model's parameters, and
    tools/test.py scores the fine-tuned model as validation did."""
    model = MODELS.build(dict(
        type='GAL',
        **dict(CLASSIFIERS['resnet20'],
               backbone=dict(type='CIFARResNet', depth=20, in_channels=1)),
        structures=BLOCKS))
    randomize_bn(model)
    set_masks(model, lambda kind, i, j: i in (2, 3, 7))
    remove_masked_structures(model, torch.randn(4, 1, 32, 32))
    path = str(tmp_path / 'pruned.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={},
                    architecture=record_architecture(model)), path)
    config = 'gal/resnet20_fashion_mnist_gal-0.6_finetune.py'
    cfg = small_cfg(config, tmp_path / 'ft', mnist_root, **{
        'load_from': path, 'train_cfg.max_epochs': 1})
    runner = build_runner(cfg)
    runner.train()
    net = runner.model
    assert type(net.backbone.layer2[0]).__name__ == 'ResidualShortcut'
    stepped = [p for g in runner.optim_wrapper.optimizer.param_groups
               for p in g['params']]
    assert {id(p) for p in stepped} == {id(p) for p in net.parameters()}
    tuned = osp.join(str(tmp_path / 'ft'), 'epoch_1.pth')
    record = torch.load(tuned, weights_only=True)['architecture']
    assert [r['name'] for r in record['removed']] == [
        'backbone.layer1.2', 'backbone.layer2.0', 'backbone.layer3.1'
    ]
    val = runner.message_hub.get_scalar('val/accuracy/top1').current()
    metrics = load_tool('test').main([
        config_path(*config.split('/')), tuned, '--data-root', mnist_root,
        '--work-dir', str(tmp_path / 'test'), '--cfg-options',
        'test_dataloader.num_workers=0'
    ])
    assert metrics['accuracy/top1'] == pytest.approx(val, abs=1e-6)
