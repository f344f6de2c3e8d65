"""Any two-domain dataset in folders (issue 11): domains and classes as
configuration, class folders read from disk, numeric class names, and bad
input named before training."""
import glob
import os
import os.path as osp
import shutil

import pytest
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

from prunedet.datasets.synthetic_office import write_domains
from test_domain_adaptation import PIPELINE

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
