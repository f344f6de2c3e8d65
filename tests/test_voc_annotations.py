"""VOC XML as annotation tools write it loads; what cannot load is named
before training starts."""
import os.path as osp
import shutil

import pytest
from mmengine.registry import DefaultScope

from prunedet.datasets.synthetic_voc import write_shapes_voc
from prunedet.datasets.voc import CheckedVOCDataset, VOCAnnotationError


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
    assert '4 images checked' in log and '1 of other classes skipped' in log
    assert '1 difficult' in log


@pytest.mark.parametrize('breakage, message', [
    (lambda s: s[:len(s) // 2], 'not a complete XML file'),
    (lambda s: s.replace('<name>', '<nome>').replace('</name>', '</nome>'),
     'has no <name>'),
    (lambda s: s.replace('<xmin>', '<xmin>abc', 1),
     r'has no number in <xmin>'),
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
        with DefaultScope.overwrite_default_scope('mmdet'):
            train = DATASETS.build(cfg.train_dataloader.dataset)
            test = DATASETS.build(cfg.test_dataloader.dataset)
        assert len(train) == 3 * 6 and len(test) == 3  # no VOC2012 needed
    cfg = load_config(config_path('faster_rcnn_vgg16_voc.py'), data_root=root)
    with pytest.raises(FileNotFoundError, match='VOC2012'):
        with DefaultScope.overwrite_default_scope('mmdet'):
            DATASETS.build(cfg.train_dataloader.dataset)
