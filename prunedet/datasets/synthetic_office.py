"""A small Office-31-like dataset in the real folder layout (tests, demos).

Every class is a fixed random silhouette (smooth blobs); every sample places
it at a random offset with a random tone. The domains render the same
classes in visibly different styles, the way Office-31's product photos,
webcam and DSLR shots differ: background brightness and texture, colour
cast, contrast, blur and sensor noise. Classes are learnable from the
shapes, while a network trained on one domain meets shifted low-level
statistics in another: the situation domain adaptation is for.
"""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from PIL import Image, ImageFilter

from .office31 import OFFICE31_CLASSES

# background level, object level, colour cast (RGB gains), blur radius,
# noise std, amplitude of a striped background texture. The shift is sized so
# that a small VGG-16 trained on amazon keeps some accuracy on the other
# domains (about 10% on webcam, 35% on dslr; chance is 3%) and adaptation has
# room to work: with a stronger cast and darker webcam images, source-only
# and MMD models both stayed near chance.
DOMAIN_STYLES: Dict[str, dict] = {
    'amazon': dict(bg=0.95, fg=0.25, cast=(1., 1., 1.), blur=0., noise=0.02,
                   stripes=0.),
    'webcam': dict(bg=0.75, fg=0.20, cast=(0.9, 0.95, 1.1), blur=0.7,
                   noise=0.05, stripes=0.),
    'dslr': dict(bg=0.85, fg=0.30, cast=(1.1, 1.0, 0.9), blur=1.0,
                 noise=0.03, stripes=0.1),
}


def _silhouettes(num: int, size: int, seed: int) -> np.ndarray:
    """``num`` smooth random shapes in [0, 1], one per class."""
    rng = np.random.default_rng(seed)
    grid = 6
    masks = np.empty((num, size, size), dtype=np.float32)
    for i in range(num):
        coarse = (rng.random((grid, grid)) > 0.5).astype(np.float32)
        coarse[[0, -1], :] = coarse[:, [0, -1]] = 0  # keep a margin
        img = Image.fromarray(np.uint8(coarse * 255)).resize(
            (size, size), Image.BILINEAR)
        masks[i] = np.asarray(img, dtype=np.float32) / 255.
    return masks


def render(mask: np.ndarray, style: dict,
           rng: np.random.Generator) -> np.ndarray:
    """One RGB uint8 image of ``mask`` in a domain ``style``."""
    size = mask.shape[0]
    shift = rng.integers(-size // 8, size // 8 + 1, 2)
    mask = np.roll(mask, tuple(shift), axis=(0, 1))
    bg = np.full((size, size), style['bg'], dtype=np.float32)
    if style['stripes']:
        period = size / 4
        phase = rng.random() * 2 * np.pi
        bg += style['stripes'] * np.sin(
            2 * np.pi * np.arange(size) / period + phase)[None, :]
    fg = style['fg'] + rng.uniform(-0.1, 0.1)
    gray = bg * (1 - mask) + fg * mask
    rgb = gray[..., None] * np.asarray(style['cast'], dtype=np.float32)
    img = Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255))
    if style['blur']:
        img = img.filter(ImageFilter.GaussianBlur(style['blur']))
    arr = np.asarray(img, dtype=np.float32) / 255.
    arr = arr + rng.normal(0, style['noise'], arr.shape)
    return np.uint8(np.clip(arr, 0, 1) * 255)


def write_domains(root: str,
                  styles: Dict[str, str],
                  classes: Sequence[str],
                  images_per_class: int = 8,
                  size: int = 64,
                  seed: int = 0,
                  subdir: str = '') -> str:
    """Write ``root/<domain>[/<subdir>]/<class>/<i>.jpg``, each domain
    (a folder name) rendered in a style of :data:`DOMAIN_STYLES` (e.g.
    ``{'uci': 'amazon', 'mnist': 'webcam'}``): any two-domain layout."""
    masks = _silhouettes(len(classes), size, seed=1234)
    for d, (domain, style) in enumerate(styles.items()):
        rng = np.random.default_rng(seed + 1000 * (d + 1))
        for mask, name in zip(masks, classes):
            folder = osp.join(root, domain, subdir, str(name))
            os.makedirs(folder, exist_ok=True)
            for i in range(images_per_class):
                Image.fromarray(render(mask, DOMAIN_STYLES[style], rng)).save(
                    osp.join(folder, f'frame_{i:04d}.jpg'), quality=90)
    return root


def write_office31(root: str,
                   domains: Sequence[str] = ('amazon', 'webcam'),
                   images_per_class: int = 8,
                   size: int = 64,
                   classes: Sequence[str] = OFFICE31_CLASSES,
                   seed: int = 0) -> str:
    """Write ``root/<domain>/images/<class>/<i>.jpg`` for each domain."""
    return write_domains(root, {d: d
                                for d in domains}, classes,
                         images_per_class, size, seed, subdir='images')
