"""VOC XML as annotation tools write it loads; what cannot load is named
before training starts."""
import os.path as osp
import shutil

import pytest
from mmengine.registry import DefaultScope

from prunedet.datasets.synthetic_voc import write_shapes_voc
from prunedet.datasets.voc import (CheckedVOCDataset, VOCAnnotationError,
                                   VOCDatasetError, VOCImageError)


@pytest.fixture
def voc(tmp_path):
    return write_shapes_voc(str(tmp_path / 'voc'), 4, 2, size=(64, 96))


def xml_of(root, image_id):
    return osp.join(root, 'VOC2007', 'Annotations', f'{image_id}.xml')


def build(root, split='trainval', **kwargs):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return CheckedVOCDataset(
            data_root=root,
            ann_file=f'VOC2007/ImageSets/Main/{split}.txt',
            data_prefix=dict(sub_data_root='VOC2007/'),
            metainfo=dict(classes=('circle', 'square', 'triangle')),
            pipeline=[],
            serialize_data=False,  # its gc.collect() takes most of a second
            **kwargs)


ANNOTATION_TOOL_XML = """<annotation>
  <folder>VOC2007</folder><filename>{id}.jpg</filename>
  <object><name>square</name><pose/><truncated/><difficult/>
    <bndbox><xmin>10.5</xmin><ymin>4.25</ymin><xmax>30.75</xmax>
    <ymax>20</ymax></bndbox></object>
  <object><name>circle</name><difficult>1</difficult>
    <bndbox><xmin>40</xmin><ymin>30</ymin><xmax>60</xmax><ymax>50</ymax>
    </bndbox></object>
  <object><name>person</name><difficult>0</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>
    </bndbox></object>
</annotation>"""


def test_annotation_tool_xml_loads_with_the_right_boxes(voc, logged):
    first = open(osp.join(voc, 'VOC2007/ImageSets/Main/trainval.txt')
                 ).read().split()[0]
    with open(xml_of(voc, first), 'w') as f:  # no <size> either
        f.write(ANNOTATION_TOOL_XML.format(id=first))
    dataset = build(voc)
    info = next(info for info in map(dataset.get_data_info,
                                     range(len(dataset)))
                if info['img_id'] == first)
    assert (info['height'], info['width']) == (64, 96)  # from the image
    square, circle = info['instances']
    assert square['bbox'] == [9.5, 3.25, 29.75, 19.]  # floats, minus one
    assert square['ignore_flag'] == 0  # empty <difficult/>: not difficult
    assert circle['bbox'] == [39., 29., 59., 49.]
    assert circle['ignore_flag'] == 1
    assert [i['bbox_label'] for i in info['instances']] == [1, 0]
    log = logged()
    assert '4 images used (4 checked' in log
    assert '1 of other classes skipped' in log and '1 difficult' in log


@pytest.mark.parametrize('breakage, message', [
    (lambda s: s[:len(s) // 2], 'not a complete XML file'),
    (lambda s: s.replace('<name>', '<nome>').replace('</name>', '</nome>'),
     'has no <name>'),
    (lambda s: s.replace('<xmin>', '<xmin>abc', 1),
     r"object 1 \(\w+\) <xmin> is 'abc\d+', not a finite number"),
])
def test_broken_annotations_name_the_file(voc, breakage, message):
    first = open(osp.join(voc, 'VOC2007/ImageSets/Main/test.txt')
                 ).read().split()[0]
    path = xml_of(voc, first)
    text = open(path).read()
    with open(path, 'w') as f:
        f.write(breakage(text))
    with pytest.raises(VOCAnnotationError, match=f'{first}.xml: .*{message}'):
        build(voc, 'test', test_mode=True)


def test_a_truncated_xml_stops_training_before_it_starts(tmp_path, voc):
    from test_detection import demo_cfg
    from runner_utils import build_runner
    broken = str(tmp_path / 'broken')
    shutil.copytree(voc, broken)
    first = open(osp.join(broken, 'VOC2007/ImageSets/Main/trainval.txt')
                 ).read().split()[0]
    text = open(xml_of(broken, first)).read()
    with open(xml_of(broken, first), 'w') as f:
        f.write(text[:-30])
    runner = build_runner(demo_cfg(tmp_path / 'work', broken))
    with pytest.raises(VOCAnnotationError, match=f'{first}.xml'):
        runner.train()
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_voc2007_only_configs_build_their_datasets(tmp_path):
    from mmdet.registry import DATASETS
    from conftest import config_path
    from prunedet.utils.config import load_config
    root = write_shapes_voc(str(tmp_path / 'devkit'), 6, 3,
                            classes=('aeroplane', 'bicycle', 'bird'))
    for name in ('faster_rcnn_vgg16_voc07.py',
                 'faster_rcnn_vgg16_voc07_rpgp.py'):
        cfg = load_config(config_path(name), data_root=root)
        # the image check is offered where users set up their data
        assert cfg.train_dataloader.dataset.dataset.check_images is False
        cfg.train_dataloader.dataset.dataset.check_images = True
        assert cfg.test_dataloader.dataset.check_images is False
        with DefaultScope.overwrite_default_scope('mmdet'):
            train = DATASETS.build(cfg.train_dataloader.dataset)
            test = DATASETS.build(cfg.test_dataloader.dataset)
        assert len(train) == 3 * 6 and len(test) == 3  # no VOC2012 needed
        assert train.dataset.check_images
    cfg = load_config(config_path('faster_rcnn_vgg16_voc.py'), data_root=root)
    with pytest.raises(FileNotFoundError, match='VOC2012'):
        with DefaultScope.overwrite_default_scope('mmdet'):
            DATASETS.build(cfg.train_dataloader.dataset)


def first_of(root, split='trainval'):
    return open(osp.join(root, f'VOC2007/ImageSets/Main/{split}.txt')
                ).read().split()[0]


def rewrite(path, *replacements):
    text = open(path).read()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    with open(path, 'w') as f:
        f.write(text)


def test_a_nan_box_stops_training_before_it_starts(tmp_path, voc):
    """A NaN box passed the check and killed training inside RoIAlign."""
    from test_detection import demo_cfg
    from runner_utils import build_runner
    first = first_of(voc)
    path = xml_of(voc, first)
    xmax = open(path).read().split('<xmax>')[1].split('<')[0]
    rewrite(path, (f'<xmax>{xmax}<', '<xmax>nan<'))
    runner = build_runner(demo_cfg(tmp_path / 'work', voc))
    with pytest.raises(VOCAnnotationError,
                       match=rf"{first}.xml: object 1 \(\w+\) <xmax> is "
                       "'nan', not a finite number"):
        runner.train()
    assert not list((tmp_path / 'work').glob('*.pth'))


@pytest.mark.parametrize('value', ['nan', 'inf', '-inf', '1e400', 'NaN'])
@pytest.mark.parametrize('tag', ['xmin', 'ymax'])
def test_non_finite_coordinates_are_named(voc, tag, value):
    first = first_of(voc)
    path = xml_of(voc, first)
    old = open(path).read().split(f'<{tag}>')[1].split('<')[0]
    rewrite(path, (f'<{tag}>{old}<', f'<{tag}>{value}<'))
    with pytest.raises(VOCAnnotationError,
                       match=rf'{first}.xml: object 1 \(\w+\) <{tag}> is '
                       f"'{value}', not a finite number"):
        build(voc)


@pytest.mark.parametrize('value', ['yes', '2', 'true', '-1', '0.5'])
def test_difficult_other_than_0_or_1_is_named(voc, value):
    first = first_of(voc)
    rewrite(xml_of(voc, first), ('<difficult>0<', f'<difficult>{value}<'))
    with pytest.raises(VOCAnnotationError,
                       match=rf"{first}.xml: object 1 \(\w+\) <difficult> is "
                       f"'{value}'; VOC uses 0 and 1"):
        build(voc)


@pytest.mark.parametrize('width', ['-64', '95.5', 'nan', '1e30', '70000'])
def test_a_size_that_is_not_whole_pixels_is_named(voc, width):
    """A negative <size> silently dropped its image from training."""
    first = first_of(voc)
    rewrite(xml_of(voc, first), ('<width>96<', f'<width>{width}<'))
    with pytest.raises(VOCAnnotationError,
                       match=f'{first}.xml: <size> <width> is '):
        build(voc, filter_cfg=dict(filter_empty_gt=True, min_size=32))


def test_an_undecodable_image_without_size_is_named(voc):
    first = first_of(voc)
    path = xml_of(voc, first)
    size = open(path).read().split('<size>')[1].split('</size>')[0]
    rewrite(path, (f'<size>{size}</size>', ''))
    image = osp.join(voc, 'VOC2007', 'JPEGImages', f'{first}.jpg')
    with open(image, 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(VOCImageError,
                       match=f'{first}.jpg: not a decodable image '
                       rf'\(and .*{first}.xml has no <size>'):
        build(voc)


def box_xml(image_id, *boxes):
    objects = ''.join(
        '<object><name>square</name><difficult>0</difficult><bndbox>'
        f'<xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>'
        f'<ymax>{b[3]}</ymax></bndbox></object>' for b in boxes)
    return (f'<annotation><filename>{image_id}.jpg</filename><size>'
            '<width>96</width><height>64</height><depth>3</depth></size>'
            f'{objects}</annotation>')


def test_boxes_past_the_image_are_clipped_and_boxes_outside_refused(
        voc, logged):
    first = first_of(voc)
    with open(xml_of(voc, first), 'w') as f:  # 1-based, inclusive
        f.write(box_xml(first, (0, -5, 40, 30), (50, 20, 1e30, 90),
                        (1, 1, 96, 64)))
    info = next(info for info in map(build(voc).get_data_info, range(4))
                if info['img_id'] == first)
    assert [i['bbox'] for i in info['instances']] == [
        [0, 0, 39, 29], [49, 19, 96, 64], [0, 0, 95, 63]]
    assert '2 boxes clipped to their image' in logged()
    for box, problem in [((100, 1, 120, 10), 'outside its 96x64 image'),
                         ((1, 70, 10, 80), 'outside its 96x64 image'),
                         ((30, 10, 20, 20), 'empty box'),
                         ((10, 10, 20, 10), 'empty box')]:
        with open(xml_of(voc, first), 'w') as f:
            f.write(box_xml(first, (1, 1, 9, 9), box))
        with pytest.raises(VOCAnnotationError,
                           match=f'{first}.xml: object 2 .*{problem}'):
            build(voc)


def test_the_summary_counts_the_images_that_are_used(voc, logged):
    first = first_of(voc)
    with open(xml_of(voc, first), 'w') as f:
        f.write(box_xml(first))  # no object: filter_empty_gt drops it
    dataset = build(voc, filter_cfg=dict(filter_empty_gt=True, min_size=32))
    assert len(dataset) == 3
    assert '3 images used (4 checked' in logged()
    assert '1 dropped by filter_cfg' in logged()


def test_a_split_with_no_usable_image_is_named(voc):
    split = osp.join(voc, 'VOC2007/ImageSets/Main/empty.txt')
    open(split, 'w').close()
    with pytest.raises(VOCDatasetError, match='empty.txt: no image left'):
        build(voc, 'empty')


def test_check_images_decodes_every_image_before_training(voc, logged):
    first = first_of(voc)
    image = osp.join(voc, 'VOC2007', 'JPEGImages', f'{first}.jpg')
    data = open(image, 'rb').read()
    with open(image, 'wb') as f:
        f.write(data[:len(data) * 2 // 3])
    assert len(build(voc)) == 4  # the default reads no image
    with pytest.raises(VOCImageError,
                       match=f'{first}.jpg: not a decodable image'):
        build(voc, check_images=True)
    with open(image, 'wb') as f:
        f.write(data)
    assert len(build(voc, check_images=True)) == 4
    assert 'every image decoded' in logged()
    rewrite(xml_of(voc, first), ('<width>96<', '<width>100<'))
    with pytest.raises(VOCImageError, match=f'{first}.jpg: the image is '
                       rf'96x64 but .*{first}.xml gives <size> 100x64'):
        build(voc, check_images=True)
