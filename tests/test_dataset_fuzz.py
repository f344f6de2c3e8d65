"""Random mutations of a valid VOC annotation and of MNIST's IDX files.

Each mutated dataset is either loaded correctly (it builds and every item
goes through the training pipeline with finite boxes inside the image, or
labels among the classes) or refused with the dataset's error naming the
mutated file; none allocates more than the files warrant (traced by
``tracemalloc``) and none takes more than a few seconds.
"""
import copy
import os.path as osp
import re
import time
import tracemalloc
import xml.etree.ElementTree as ET
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from mmengine.registry import DefaultScope

from prunedet.datasets.offline_classification import DatasetFileError
from prunedet.datasets.synthetic import MNIST_FILES, write_mnist
from prunedet.datasets.synthetic_voc import write_shapes_voc
from prunedet.datasets.voc import CheckedVOCDataset, VOCDatasetError

FUZZ = settings(max_examples=100, derandomize=True, deadline=None,
                database=None)
MAX_SECONDS = 5  # per example; a few milliseconds are usual
MAX_TRACED = 4 * 2**20  # bytes; the files are a few kB, ~0.1 MB is usual


@contextmanager
def bounded():
    """Fail if the body allocates (as traced) or runs too much."""
    start = time.perf_counter()
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_TRACED
    assert time.perf_counter() - start < MAX_SECONDS


def refusal(error):
    """The kind of refusal, for ``--hypothesis-show-statistics``."""
    return re.sub(r"[\d.]+|'.*?'|\(.*\)|/\S+", '_', str(error))[:60]


# --- VOC XML ---------------------------------------------------------------

CLASSES = ('circle', 'square', 'triangle')
NUMBERS = ['nan', 'inf', '-inf', 'NaN', '1e400', '-1', '0', '1', '2', '7.5',
           ' 12 ', '1e30', '65536', 'abc', '', 'true', 'yes', 'square',
           'BOMB']  # 'BOMB': an entity of 10**9 characters
BOMB = ('<!DOCTYPE annotation [<!ENTITY a "aaaaaaaaaa">' + ''.join(
    f'<!ENTITY {b} "{("&" + a + ";") * 10}">'
    for a, b in zip('abcdefgh', 'bcdefghi')) + ']>')
TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]

element = st.integers(0, 63)  # taken modulo the number of elements
new_text = st.tuples(st.just('text'), element, st.sampled_from(NUMBERS))
xml_mutation = st.one_of(
    st.tuples(st.just('delete'), element),
    st.tuples(st.just('duplicate'), element),
    new_text, new_text, new_text,  # the most frequent
    st.tuples(st.just('nest'), element, st.booleans()),
)


def mutate_xml(text, mutations, cut):
    root = ET.fromstring(text)
    for kind, index, *value in mutations:
        elements = list(root.iter())
        elem = elements[index % len(elements)]
        parent = next((p for p in elements if elem in list(p)), None)
        if kind == 'delete' and parent is not None:
            parent.remove(elem)
        elif kind == 'duplicate' and parent is not None:
            parent.insert(list(parent).index(elem), copy.deepcopy(elem))
        elif kind == 'text':
            elem.text = value[0]
        elif kind == 'nest':  # <xmin><junk/>12</xmin> or <xmin>12<junk/>
            junk = ET.Element('junk')
            if value[0]:
                junk.tail, elem.text = elem.text, None
            elem.insert(0, junk)
    data = ET.tostring(root, encoding='unicode')
    if 'BOMB' in data:
        data = BOMB + data.replace('BOMB', '&i;')
    data = data.encode()
    return data if cut is None else data[:int(len(data) * cut)]


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = write_shapes_voc(str(tmp_path_factory.mktemp('voc')), 3, 1,
                            size=(64, 96))
    build_voc(root)  # registries and imports outside the bounds
    return root


def build_voc(root):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return CheckedVOCDataset(
            data_root=root,
            ann_file='VOC2007/ImageSets/Main/trainval.txt',
            data_prefix=dict(sub_data_root='VOC2007/'),
            metainfo=dict(classes=CLASSES),
            filter_cfg=dict(filter_empty_gt=True, min_size=32,
                            bbox_min_size=8),
            pipeline=TRAIN_PIPELINE,
            serialize_data=False)  # its gc.collect() takes most of a second


def assert_loads_correctly(dataset):
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        for instance in info['instances']:
            x1, y1, x2, y2 = instance['bbox']
            assert 0 <= x1 < x2 <= info['width'], info
            assert 0 <= y1 < y2 <= info['height'], info
            assert 0 <= instance['bbox_label'] < len(CLASSES)
        sample = dataset[index]['data_samples']
        boxes = sample.gt_instances.bboxes.tensor
        height, width = sample.img_shape
        assert boxes.isfinite().all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()


@FUZZ
@given(mutations=st.lists(xml_mutation, min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.none(), st.floats(0, 1)))
def test_mutated_voc_xml_loads_or_is_refused_naming_it(voc, mutations, cut):
    image_id = open(osp.join(voc, 'VOC2007/ImageSets/Main/trainval.txt')
                    ).read().split()[0]
    path = osp.join(voc, 'VOC2007', 'Annotations', f'{image_id}.xml')
    original = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(mutate_xml(original, mutations, cut))
    try:
        with bounded():
            try:
                dataset = build_voc(voc)
            except VOCDatasetError as error:
                assert str(error).startswith(f'{path}: '), error
                event(f'refused: {refusal(error)}')
            else:
                assert_loads_correctly(dataset)
                event('loaded')
    finally:
        with open(path, 'wb') as f:
            f.write(original)


# --- MNIST IDX -------------------------------------------------------------

IMAGES, LABELS = MNIST_FILES[2:]  # the test split
COUNT = 4
header_byte = st.tuples(st.just('header'), st.integers(0, 15),
                        st.integers(0, 255))
dimension = st.tuples(
    st.just('dim'), st.integers(0, 2),
    st.one_of(
        st.sampled_from([0, 1, COUNT - 1, COUNT + 1, 14, 56, 28 * 28, 10**9,
                         2**20, 2**22, 2**32 - 1]), st.integers(0, 2**32 - 1)))
idx_mutation = st.one_of(
    header_byte, dimension,
    st.tuples(st.just('truncate'), st.floats(0, 1)),
    st.tuples(st.just('append'), st.integers(1, 64)),
    st.tuples(st.just('body'), st.integers(0, 4 * 28 * 28),
              st.sampled_from([0, 9, 10, 11, 127, 128, 255])),
)


def mutate_idx(data, mutations):
    data = bytearray(data)
    dims = data[3]
    for kind, *args in mutations:
        if kind == 'header' and args[0] < len(data):
            data[args[0]] = args[1]
        elif kind == 'dim' and args[0] < dims and len(data) >= 4 * dims + 4:
            start = 4 + 4 * args[0]
            data[start:start + 4] = args[1].to_bytes(4, 'big')
        elif kind == 'truncate':
            del data[int(len(data) * args[0]):]
        elif kind == 'append':
            data += bytes(range(args[0]))
        elif kind == 'body' and len(data) > 4 + 4 * dims:
            body = len(data) - 4 - 4 * dims
            data[4 + 4 * dims + args[0] % body] = args[1]
    return bytes(data)


@pytest.fixture(scope='module')
def mnist(tmp_path_factory):
    root = write_mnist(str(tmp_path_factory.mktemp('mnist')), COUNT, COUNT)
    build_mnist(root)
    return root


def build_mnist(root):
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(
            dict(type='OfflineMNIST', data_root=root, split='test',
                 test_mode=True, pipeline=[dict(type='PackInputs')],
                 serialize_data=False))


@FUZZ
@given(target=st.sampled_from([IMAGES, LABELS]),
       mutations=st.lists(idx_mutation, min_size=1, max_size=3))
def test_mutated_idx_files_load_or_are_refused_naming_them(
        mnist, target, mutations):
    path = osp.join(mnist, target)
    original = open(path, 'rb').read()
    mutated = mutate_idx(original, mutations)
    with open(path, 'wb') as f:
        f.write(mutated)
    try:
        with bounded():
            try:
                dataset = build_mnist(mnist)
            except DatasetFileError as error:
                assert path in str(error), error
                event(f'refused: {refusal(error)}')
            else:
                event('loaded')
                shape = np.frombuffer(open(osp.join(mnist, IMAGES), 'rb').read(
                    16), '>u4')[1:]
                assert len(dataset) == shape[0]
                for index in range(len(dataset)):
                    sample = dataset[index]
                    assert tuple(sample['inputs'].shape[-2:]) == tuple(
                        shape[1:])
                    assert 0 <= sample['data_samples'].gt_label < 10
    finally:
        with open(path, 'wb') as f:
            f.write(original)
