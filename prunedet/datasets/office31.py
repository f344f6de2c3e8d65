"""Office-31 and the source/target pairing that unsupervised adaptation needs.

Office-31 (Saenko et al. 2010) is read from its usual folder layout,
``<data_root>/<domain>/images/<class>/*.jpg``, one dataset per domain. Labels
follow the fixed list of the 31 classes, not whatever folders exist, so the
same index means the same class in every domain; a missing domain or class
folder is named before training starts.

:class:`DomainPairDataset` gives every labelled source sample an unlabelled
target image, so the stock mmengine Runner, samplers and loops train an
adaptation model: each batch holds a source batch and a target batch of the
same size. The target's labels never leave the wrapper.
"""
import copy
import os.path as osp

import numpy as np
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.custom import get_samples
from mmpretrain.registry import DATASETS

OFFICE31_DOMAINS = ('amazon', 'dslr', 'webcam')
OFFICE31_CLASSES = (
    'back_pack', 'bike', 'bike_helmet', 'bookcase', 'bottle', 'calculator',
    'desk_chair', 'desk_lamp', 'desktop_computer', 'file_cabinet',
    'headphones', 'keyboard', 'laptop_computer', 'letter_tray',
    'mobile_phone', 'monitor', 'mouse', 'mug', 'paper_notebook', 'pen',
    'phone', 'printer', 'projector', 'punchers', 'ring_binder', 'ruler',
    'scissors', 'speaker', 'stapler', 'tape_dispenser', 'trash_can')


@DATASETS.register_module()
class Office31(CustomDataset):
    """One domain of Office-31.

    Args:
        data_root: the folder holding ``amazon/``, ``dslr/`` and ``webcam/``.
        domain: ``'amazon'``, ``'dslr'`` or ``'webcam'``.
        **kwargs: as for mmpretrain's ``CustomDataset`` (``pipeline``,
            ``test_mode``, ``metainfo=dict(classes=...)`` for a subset).
    """
    METAINFO = dict(classes=OFFICE31_CLASSES)

    def __init__(self, data_root: str, domain: str, **kwargs):
        if domain not in OFFICE31_DOMAINS:
            raise ValueError(f'Office31: unknown domain {domain!r}, choose '
                             f'from {OFFICE31_DOMAINS}')
        self.domain = domain
        super().__init__(
            data_root=data_root,
            data_prefix=osp.join(domain, 'images'),
            **kwargs)

    def _find_samples(self):
        root = self.img_prefix
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'Office31: no folder {root!r} for the domain '
                f'{self.domain!r}; expected <data_root>/{self.domain}/images/'
                '<class>/*.jpg')
        classes = self.metainfo['classes']
        missing = [c for c in classes if not osp.isdir(osp.join(root, c))]
        if missing:
            raise FileNotFoundError(
                f'Office31: the {self.domain!r} domain in {root!r} lacks the '
                f'class folders {missing}')
        samples, empty = get_samples(
            root, {c: i
                   for i, c in enumerate(classes)}, self.is_valid_file)
        if empty:
            raise FileNotFoundError(
                f'Office31: no images in the {self.domain!r} class folders '
                f'{sorted(empty)} under {root!r}')
        return samples


@DATASETS.register_module()
class DomainPairDataset:
    """Labelled source samples, each paired with a random target image.

    An epoch is one pass over the source. Item ``i`` is source sample ``i``
    (``inputs``, ``data_samples``) plus ``target_inputs``, the image of a
    target sample drawn with numpy's global generator, which mmengine seeds
    per dataloader worker. Only the target's image is returned: its label
    cannot reach the loss.

    Args:
        source, target: dataset configs (or datasets) of the two domains; they
            must have the same classes.
        lazy_init: defer loading the file lists to :meth:`full_init`.
    """

    def __init__(self, source, target, lazy_init: bool = False):
        self.source = DATASETS.build(source) if isinstance(source,
                                                           dict) else source
        self.target = DATASETS.build(target) if isinstance(target,
                                                           dict) else target
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.source.metainfo)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.source.full_init()
        self.target.full_init()
        src, tgt = (tuple(d.metainfo.get('classes', ()))
                    for d in (self.source, self.target))
        if src != tgt:
            raise ValueError('DomainPairDataset: source and target classes '
                             f'differ: {sorted(set(src) ^ set(tgt))}')
        if len(self.target) == 0:
            raise ValueError('DomainPairDataset: the target domain is empty')
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self.source)

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        source = self.source[idx]
        target = self.target[np.random.randint(len(self.target))]
        return dict(
            inputs=source['inputs'],
            data_samples=source['data_samples'],
            target_inputs=target['inputs'])
