"""PascalVOC from the devkit layout, checked before any image is read.

mmdet's ``VOCDataset`` fails on the first problem it meets, deep inside the
data loading, without naming the file: ``int(None)`` on the empty
``<difficult/>`` that annotation tools (and some VOC2011/2012 files) write,
a ``ParseError`` on a truncated XML. This variant parses every annotation of
the split when the dataset is built (before training starts), reads what is
readable the way users expect, and names the file and the problem otherwise:

* empty ``<difficult/>``, ``<truncated/>``, ``<pose/>``: not difficult;
* float box coordinates: kept as floats (VOC's 1-based pixels, minus one);
* no ``<size>`` (or a zero one): read from the image;
* a missing split file, XML or JPEG, an XML that does not parse, an object
  without a name or a box, a box that is not numbers or is empty: an error
  with the path.

A summary is logged: images, objects per class, difficult objects, and
objects of other classes that were skipped.
"""
import os.path as osp
import time
import xml.etree.ElementTree as ET
from collections import Counter
from typing import List, Optional

import mmcv
from mmdet.datasets import VOCDataset
from mmdet.registry import DATASETS
from mmengine.fileio import list_from_file
from mmengine.logging import print_log


class VOCAnnotationError(ValueError):
    """An annotation file that cannot be read as a VOC annotation."""


def _text(elem: Optional[ET.Element]) -> Optional[str]:
    text = None if elem is None else elem.text
    return text.strip() if text is not None and text.strip() else None


def _number(parent: ET.Element, tag: str, path: str, what: str) -> float:
    text = _text(parent.find(tag))
    try:
        return float(text)
    except (TypeError, ValueError):
        raise VOCAnnotationError(
            f'{path}: {what} has no number in <{tag}> (found {text!r})'
        ) from None


@DATASETS.register_module()
class CheckedVOCDataset(VOCDataset):
    """``VOCDataset`` that reads real-world VOC XML and names what it cannot.

    With classes other than VOC's twenty (``metainfo=dict(classes=...)``) the
    VOC2007/VOC2012 dataset type is dropped, so that ``VOCMetric`` reports
    per-class AP under the dataset's own class names.
    """

    def __init__(self, **kwargs):
        self._counts = Counter()
        super().__init__(**kwargs)
        if tuple(self._metainfo['classes']) != tuple(
                VOCDataset.METAINFO['classes']):
            self._metainfo['dataset_type'] = None

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: split file {self.ann_file!r} does '
                'not exist (expected VOCdevkit/VOC20xx/ImageSets/Main/'
                '<split>.txt)')
        ids = list_from_file(self.ann_file)
        for subdir, ext in ((self.ann_subdir, 'xml'), (self.img_subdir,
                                                        'jpg')):
            folder = osp.join(self.sub_data_root, subdir)
            missing = [
                i for i in ids
                if not osp.isfile(osp.join(folder, f'{i}.{ext}'))
            ]
            if missing:
                raise FileNotFoundError(
                    f'{type(self).__name__}: {len(missing)} of {len(ids)} '
                    f'images of {osp.basename(self.ann_file)} have no '
                    f'{folder}/<id>.{ext}, e.g. {missing[:3]}')
        start = time.perf_counter()
        self._counts = Counter()
        data_list = super().load_data_list()  # parses every XML now
        self._log_summary(data_list, time.perf_counter() - start)
        return data_list

    def parse_data_info(self, img_info: dict) -> dict:
        path = img_info['xml_path']
        try:
            tree = ET.parse(path)
        except ET.ParseError as error:
            raise VOCAnnotationError(
                f'{path}: not a complete XML file ({error})') from None
        root = tree.getroot()
        img_path = osp.join(self.sub_data_root, img_info['file_name'])
        width = height = None
        size = root.find('size')
        if size is not None and _text(size.find('width')) and _text(
                size.find('height')):
            width = int(_number(size, 'width', path, '<size>'))
            height = int(_number(size, 'height', path, '<size>'))
        if not width or not height:  # no (or an empty) <size>: the image's
            height, width = mmcv.imread(img_path).shape[:2]
        return dict(
            img_path=img_path,
            img_id=img_info['img_id'],
            xml_path=path,
            height=height,
            width=width,
            instances=self._parse_instances(root, path))

    def _parse_instances(self, root: ET.Element, path: str) -> List[dict]:
        instances = []
        for index, obj in enumerate(root.findall('object')):
            what = f'object {index + 1}'
            name = _text(obj.find('name'))
            if name is None:
                raise VOCAnnotationError(f'{path}: {what} has no <name>')
            if name not in self._metainfo['classes']:
                self._counts['skipped'] += 1
                continue
            box = obj.find('bndbox')
            if box is None:
                raise VOCAnnotationError(
                    f'{path}: {what} ({name}) has no <bndbox>')
            x1, y1, x2, y2 = (
                _number(box, tag, path, f'{what} ({name})') - 1
                for tag in ('xmin', 'ymin', 'xmax', 'ymax'))
            if x2 <= x1 or y2 <= y1:
                raise VOCAnnotationError(
                    f'{path}: {what} ({name}) has an empty box '
                    f'{[x1 + 1, y1 + 1, x2 + 1, y2 + 1]}')
            difficult = bool(int(float(_text(obj.find('difficult')) or 0)))
            too_small = self.bbox_min_size is not None and min(
                x2 - x1, y2 - y1) < self.bbox_min_size
            instances.append(
                dict(
                    bbox=[x1, y1, x2, y2],
                    bbox_label=self.cat2label[name],
                    ignore_flag=int(difficult or too_small)))
            self._counts[name] += 1
            self._counts['difficult'] += difficult
        return instances

    def _log_summary(self, data_list: List[dict], seconds: float) -> None:
        per_class = ', '.join(f'{c} {self._counts[c]}'
                              for c in self._metainfo['classes'])
        print_log(
            f'{type(self).__name__} {osp.basename(self.ann_file)} in '
            f'{self.sub_data_root}: {len(data_list)} images checked in '
            f'{seconds:.1f}s; objects: {per_class}; '
            f'{self._counts["difficult"]} difficult; '
            f'{self._counts["skipped"]} of other classes skipped',
            logger='current')
