"""A small detection dataset in the PascalVOC devkit layout.

Real JPEGs and VOC XML annotations of simple drawn objects (circles, squares,
triangles in random colours on textured backgrounds), so that detection can
be trained and evaluated end to end, with mmdet's own VOC reader and metric,
on a machine without PascalVOC.
"""
import os
import os.path as osp
from typing import List, Sequence, Tuple
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ('circle', 'square', 'triangle')


def _background(rng: np.random.Generator, size: Tuple[int, int]) -> Image:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = rng.uniform(60, 200, 3)
    tilt = rng.uniform(-60, 60, (2, 3))
    img = base + xx[..., None] * tilt[0] + yy[..., None] * tilt[1]
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _draw(draw: ImageDraw.ImageDraw, shape: str, box, colour) -> None:
    x1, y1, x2, y2 = box
    if shape == 'circle':
        draw.ellipse(box, fill=colour)
    elif shape == 'square':
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x1 + x2) / 2, y1), (x2, y2), (x1, y2)], fill=colour)


def _overlaps(box, boxes: List) -> bool:
    return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3]
               and b[1] < box[3] for b in boxes)


def _annotation(name: str, size: Tuple[int, int], objects) -> ET.ElementTree:
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'VOC2007'
    ET.SubElement(root, 'filename').text = f'{name}.jpg'
    s = ET.SubElement(root, 'size')
    for tag, v in zip(('width', 'height', 'depth'), (size[1], size[0], 3)):
        ET.SubElement(s, tag).text = str(v)
    for cls, (x1, y1, x2, y2) in objects:
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = cls
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        ET.SubElement(obj, 'truncated').text = '0'
        ET.SubElement(obj, 'difficult').text = '0'
        bnd = ET.SubElement(obj, 'bndbox')
        # VOC boxes are 1-based and inclusive
        for tag, v in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                          (x1 + 1, y1 + 1, x2, y2)):
            ET.SubElement(bnd, tag).text = str(int(v))
    return ET.ElementTree(root)


def write_shapes_voc(root: str,
                     num_trainval: int = 200,
                     num_test: int = 50,
                     size: Tuple[int, int] = (256, 256),
                     classes: Sequence[str] = SHAPE_CLASSES,
                     seed: int = 0) -> str:
    """Write ``root/VOC2007/{JPEGImages,Annotations,ImageSets/Main}`` and
    return ``root`` (the devkit folder to use as ``data_root``)."""
    voc = osp.join(root, 'VOC2007')
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        os.makedirs(osp.join(voc, sub), exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    ids = [f'{i:06d}' for i in range(num_trainval + num_test)]
    for img_id in ids:
        img = _background(rng, size)
        draw = ImageDraw.Draw(img)
        objects, boxes = [], []
        for _ in range(int(rng.integers(1, 4))):
            for _attempt in range(20):
                side = int(rng.integers(min(h, w) // 6, min(h, w) // 2))
                x1, y1 = int(rng.integers(0, w - side)), int(
                    rng.integers(0, h - side))
                box = (x1, y1, x1 + side, y1 + side)
                if not _overlaps(box, boxes):
                    break
            else:
                continue
            cls = classes[int(rng.integers(len(classes)))]
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            _draw(draw, cls, box, colour)
            objects.append((cls, box))
            boxes.append(box)
        img.save(osp.join(voc, 'JPEGImages', f'{img_id}.jpg'), quality=92)
        _annotation(img_id, size, objects).write(
            osp.join(voc, 'Annotations', f'{img_id}.xml'))
    splits = dict(trainval=ids[:num_trainval], test=ids[num_trainval:])
    for split, split_ids in splits.items():
        with open(osp.join(voc, 'ImageSets/Main', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(split_ids) + '\n')
    return root
