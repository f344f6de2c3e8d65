"""PascalVOC from the devkit layout, checked before any image is read.

mmdet's ``VOCDataset`` fails on the first problem it meets, deep inside the
data loading, without naming the file (``int(None)`` on the empty
``<difficult/>`` that annotation tools write, a ``ParseError`` on a truncated
XML), and lets through what kills training later (a ``nan`` box reaches
RoIAlign at iteration 1). This variant parses every annotation of the split
when the dataset is built, before training starts, and either reads a file
the way users expect or refuses it with the file, the object and the field.

Accepted:

* empty ``<difficult/>``, ``<truncated/>``, ``<pose/>``: not difficult;
* float box coordinates, kept as floats (VOC's 1-based pixels, minus one);
* no ``<size>`` (or an empty or zero one): read from the image;
* a box reaching past the image: clipped to it (counted in the summary).

Refused with a :class:`VOCDatasetError` (:class:`VOCAnnotationError` for an
XML, :class:`VOCImageError` for an image) naming the file:

* a missing split file, XML or JPEG, an XML that does not parse, has a
  ``<!DOCTYPE>`` (entity expansion) or whose root is not ``<annotation>``,
  an object without a ``<name>`` or ``<bndbox>``;
* a coordinate that is not a finite number (``nan``, ``inf``, ``abc``,
  empty), a box with ``xmax <= xmin`` or ``ymax <= ymin``, a box with no
  pixel inside the image;
* a ``<size>`` that is not a whole number of pixels in 0..65535 (JPEG's
  limit): negative, fractional, non-finite;
* ``<difficult>`` other than ``0``, ``1`` or empty (``2``, ``true``, ``yes``
  are refused rather than guessed);
* an image that cannot be decoded when its size is needed, and with
  ``check_images=True`` any image that does not fully decode or whose size
  differs from its ``<size>``;
* a split of which no image is left after ``filter_cfg``.

A summary is logged: the images that will be used (after ``filter_cfg``),
objects per class, difficult objects, clipped boxes and objects of other
classes that were skipped.
"""
import math
import os.path as osp
import time
import xml.etree.ElementTree as ET
from collections import Counter
from typing import List, Optional, Tuple

import mmcv
from mmdet.datasets import VOCDataset
from mmdet.registry import DATASETS
from mmengine.fileio import list_from_file
from mmengine.logging import print_log
from PIL import Image

MAX_JPEG_SIDE = 65535
# EXIF orientations that turn the stored image by 90 degrees; OpenCV, which
# loads the images for training, applies them.
_TURNED = (5, 6, 7, 8)


class VOCDatasetError(ValueError):
    """A VOC split that cannot be trained on as it is."""


class VOCAnnotationError(VOCDatasetError):
    """An annotation file that cannot be read as a VOC annotation."""


class VOCImageError(VOCDatasetError):
    """An image of the split that cannot be decoded or contradicts its
    annotation."""


class _NoDoctype(ET.TreeBuilder):
    """Refuses a ``<!DOCTYPE>``: VOC annotations have none, and its entities
    can expand a small file a millionfold (expat stops only past 8 MiB)."""

    def doctype(self, name, pubid, system):
        raise VOCAnnotationError('has a <!DOCTYPE>, which VOC annotations '
                                 'do not use (its entities are not expanded)')


def _parse(path: str) -> ET.Element:
    parser = ET.XMLParser(target=_NoDoctype())
    try:
        with open(path, 'rb') as f:
            parser.feed(f.read())
        return parser.close()
    except ET.ParseError as error:
        raise VOCAnnotationError(
            f'{path}: not a complete XML file ({error})') from None
    except VOCAnnotationError as error:
        raise VOCAnnotationError(f'{path}: {error}') from None


def _text(elem: Optional[ET.Element]) -> Optional[str]:
    text = None if elem is None else elem.text
    return text.strip() if text is not None and text.strip() else None


def _number(parent: ET.Element, tag: str, path: str, what: str) -> float:
    text = _text(parent.find(tag))
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        found = 'missing or empty' if text is None else repr(text)
        raise VOCAnnotationError(
            f'{path}: {what} <{tag}> is {found}, not a finite number')
    return value


def _difficult(obj: ET.Element, path: str, what: str) -> bool:
    text = _text(obj.find('difficult'))
    if text not in (None, '0', '1'):
        raise VOCAnnotationError(
            f'{path}: {what} <difficult> is {text!r}; VOC uses 0 and 1 '
            '(empty means 0)')
    return text == '1'


def _size(root: ET.Element, path: str) -> Optional[Tuple[int, int]]:
    """``(width, height)`` from ``<size>``, or None to read the image's."""
    size = root.find('size')
    if size is None or not (_text(size.find('width'))
                            and _text(size.find('height'))):
        return None
    sides = []
    for tag in ('width', 'height'):
        value = _number(size, tag, path, '<size>')
        if value != int(value) or not 0 <= value <= MAX_JPEG_SIDE:
            raise VOCAnnotationError(
                f'{path}: <size> <{tag}> is {value:g}, not a whole number '
                f'of pixels in 0..{MAX_JPEG_SIDE}')
        sides.append(int(value))
    return tuple(sides) if all(sides) else None


def _decoded_size(img_path: str) -> Tuple[int, int]:
    """``(width, height)`` of a fully decoded image, as OpenCV turns it."""
    try:
        with Image.open(img_path) as img:
            img.verify()  # structure and checksums
        with Image.open(img_path) as img:
            img.load()  # every pixel: finds truncated files
            turned = img.getexif().get(0x0112) in _TURNED
            width, height = img.size
    except Exception as error:  # PIL raises many types for bad files
        raise VOCImageError(
            f'{img_path}: not a decodable image ({type(error).__name__}: '
            f'{error})') from None
    return (height, width) if turned else (width, height)


@DATASETS.register_module()
class CheckedVOCDataset(VOCDataset):
    """``VOCDataset`` that reads real-world VOC XML and names what it cannot.

    With classes other than VOC's twenty (``metainfo=dict(classes=...)``) the
    VOC2007/VOC2012 dataset type is dropped, so that ``VOCMetric`` reports
    per-class AP under the dataset's own class names.

    Args:
        check_images (bool): decode every image of the split when the
            dataset is built (PIL's ``verify()`` and a full ``load()``, a few
            milliseconds per VOC image) and compare its size with
            ``<size>``, so that a truncated or corrupt JPEG is named before
            training rather than when it is first loaded. Defaults to False.
    """

    def __init__(self, check_images: bool = False, **kwargs):
        self.check_images = check_images
        self._stats = {}
        self._seconds = 0.
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
        self._stats = {}
        data_list = super().load_data_list()  # parses every XML now
        self._seconds = time.perf_counter() - start
        return data_list

    def parse_data_info(self, img_info: dict) -> dict:
        path = img_info['xml_path']
        root = _parse(path)
        if root.tag != 'annotation':
            raise VOCAnnotationError(
                f'{path}: not a VOC annotation (root element <{root.tag}>)')
        img_path = osp.join(self.sub_data_root, img_info['file_name'])
        size = _size(root, path)
        if self.check_images:
            decoded = _decoded_size(img_path)
            if size is not None and size != decoded:
                raise VOCImageError(
                    f'{img_path}: the image is {decoded[0]}x{decoded[1]} but '
                    f'{path} gives <size> {size[0]}x{size[1]}')
            size = decoded
        elif size is None:
            img = mmcv.imread(img_path)
            if img is None:
                raise VOCImageError(
                    f'{img_path}: not a decodable image (and {path} has no '
                    '<size> to use instead)')
            size = img.shape[1::-1]
        width, height = size
        stats = self._stats[path] = Counter()
        return dict(
            img_path=img_path,
            img_id=img_info['img_id'],
            xml_path=path,
            height=height,
            width=width,
            instances=self._parse_instances(root, path, width, height, stats))

    def _parse_instances(self, root: ET.Element, path: str, width: int,
                         height: int, stats: Counter) -> List[dict]:
        instances = []
        for index, obj in enumerate(root.findall('object')):
            what = f'object {index + 1}'
            name = _text(obj.find('name'))
            if name is None:
                raise VOCAnnotationError(f'{path}: {what} has no <name>')
            if name not in self._metainfo['classes']:
                stats['skipped'] += 1
                continue
            what = f'{what} ({name})'
            box = obj.find('bndbox')
            if box is None:
                raise VOCAnnotationError(f'{path}: {what} has no <bndbox>')
            x1, y1, x2, y2 = (
                _number(box, tag, path, what) - 1
                for tag in ('xmin', 'ymin', 'xmax', 'ymax'))
            voc_box = [x1 + 1, y1 + 1, x2 + 1, y2 + 1]
            if x2 <= x1 or y2 <= y1:
                raise VOCAnnotationError(
                    f'{path}: {what} has an empty box {voc_box} '
                    '(xmax <= xmin or ymax <= ymin)')
            bbox = [max(x1, 0.), max(y1, 0.), min(x2, width), min(y2, height)]
            if bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
                raise VOCAnnotationError(
                    f'{path}: {what} has the box {voc_box}, outside its '
                    f'{width}x{height} image')
            difficult = _difficult(obj, path, what)
            too_small = self.bbox_min_size is not None and min(
                bbox[2] - bbox[0], bbox[3] - bbox[1]) < self.bbox_min_size
            instances.append(
                dict(
                    bbox=bbox,
                    bbox_label=self.cat2label[name],
                    ignore_flag=int(difficult or too_small)))
            stats[name] += 1
            stats['difficult'] += difficult
            stats['clipped'] += bbox != [x1, y1, x2, y2]
        return instances

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if not data_list:
            raise VOCDatasetError(
                f'{self.ann_file}: no image left to use of '
                f'{len(self.data_list)} (filter_cfg={self.filter_cfg})')
        self._log_summary(data_list)
        return data_list

    def _log_summary(self, data_list: List[dict]) -> None:
        """Counts over the images that will be used, after ``filter_cfg``."""
        counts = sum((self._stats[info['xml_path']] for info in data_list),
                     Counter())
        per_class = ', '.join(f'{c} {counts[c]}'
                              for c in self._metainfo['classes'])
        dropped = len(self.data_list) - len(data_list)
        decoded = ', every image decoded' if self.check_images else ''
        print_log(
            f'{type(self).__name__} {osp.basename(self.ann_file)} in '
            f'{self.sub_data_root}: {len(data_list)} images used '
            f'({len(self.data_list)} checked in {self._seconds:.1f}s'
            f'{decoded}, {dropped} dropped by filter_cfg); objects: '
            f'{per_class}; {counts["difficult"]} difficult; '
            f'{counts["clipped"]} boxes clipped to their image; '
            f'{counts["skipped"]} of other classes skipped',
            logger='current')
