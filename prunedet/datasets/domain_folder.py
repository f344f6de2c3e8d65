"""Two-domain datasets and the source/target pairing that unsupervised
adaptation needs.

:class:`DomainFolder` reads one domain of any dataset in the folder layout
``<data_root>/<domain>[/<subdir>]/<class>/<images>`` (digits, Office-Home,
VisDA-style folders): domains and classes are configuration, and class
folders can be read from disk. Labels follow one class list, so the same
index means the same class in every domain. A missing domain or class
folder, a class without images or a class list that is not names is an
error naming it when the dataset is built, before training starts.

:class:`DomainPairDataset` gives every labelled source sample an unlabelled
target image, so the stock mmengine Runner, samplers and loops train an
adaptation model: each batch holds a source batch and a target batch of the
same size. The target's labels never leave the wrapper.
"""
import copy
import os
import os.path as osp
from typing import Optional, Sequence, Union

import mmengine
import numpy as np
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.custom import get_samples
from mmpretrain.registry import DATASETS


def folder_name(value, what: str) -> str:
    """A folder name from config. mmengine's ``--cfg-options`` parses
    ``'0'`` (and ``'07'``) as an int, so ints are names too; anything else
    that is not a string is an error naming it."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f'{what} {value!r} ({type(value).__name__}) is not a '
                        'folder name (a string, or an integer for a numeric '
                        'folder)')
    if value == '':
        raise ValueError(f'{what}: empty folder name')
    return str(value)


def class_names(classes: Union[None, str, Sequence], where: str):
    """The class list as a tuple of strings (``None``: read from disk). A
    string is a text file with one name per line, as in mmpretrain."""
    if classes is None:
        return None
    if isinstance(classes, str):
        if not osp.isfile(osp.expanduser(classes)):
            raise TypeError(f'{where}: classes must be a list of names or a '
                            f'text file of names; {classes!r} is no file')
        classes = mmengine.list_from_file(osp.expanduser(classes))
    elif isinstance(classes, (bytes, dict)) or not hasattr(
            classes, '__iter__'):
        raise TypeError(f'{where}: classes must be a list of names, got '
                        f'{classes!r}')
    names = tuple(folder_name(c, f'{where}: class') for c in classes)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f'{where}: classes repeated in the list: {repeated}')
    if not names:
        raise ValueError(f'{where}: the class list is empty')
    return names


def _numeric_match(name: str, folders: Sequence[str]) -> Optional[str]:
    """The one folder equal to ``name`` as a number ('07' for 7: what a
    zero-padded name becomes after ``--cfg-options``), else ``None``."""
    if not name.isdigit():
        return None
    same = [f for f in folders if f.isdigit() and int(f) == int(name)]
    return same[0] if len(same) == 1 else None


@DATASETS.register_module()
class DomainFolder(CustomDataset):
    """One domain of a multi-domain dataset in the folder layout
    ``<data_root>/<domain>[/<subdir>]/<class>/<images>``.

    Args:
        data_root: the folder holding one folder per domain.
        domain: the domain's folder name.
        classes: class names, i.e. folder names (numbers are fine), or a
            text file of them. ``None``: the sorted class folders of the
            domain (then every domain must have the same folders).
        subdir: a folder between the domain and the classes (Office-31:
            ``'images'``).
        **kwargs: as for mmpretrain's ``CustomDataset`` (``pipeline``,
            ``test_mode``, ``extensions``, ``metainfo``).
    """
    domains: Optional[Sequence[str]] = None  # presets name theirs

    def __init__(self,
                 data_root: str,
                 domain: str,
                 classes: Union[None, str, Sequence] = None,
                 subdir: str = '',
                 **kwargs):
        name = type(self).__name__
        self.domain = folder_name(domain, f'{name}: domain')
        if self.domains is not None and self.domain not in self.domains:
            raise ValueError(f'{name}: unknown domain {self.domain!r}, '
                             f'choose from {tuple(self.domains)}')
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        classes = class_names(
            classes if classes is not None else metainfo.get('classes'),
            name)
        if classes is not None:
            metainfo['classes'] = classes
        self._from_disk = classes is None and not self.METAINFO.get(
            'classes')
        super().__init__(
            data_root=data_root,
            data_prefix=osp.join(self.domain, subdir)
            if subdir else self.domain,
            metainfo=metainfo or None,
            **kwargs)

    def _find_samples(self):
        name, root = type(self).__name__, self.img_prefix
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'{name}: the domain {self.domain!r} has no folder {root!r} '
                f'(expected <data_root>/{self.domain}/.../<class>/<images>)')
        folders = sorted(d for d in os.listdir(root)
                         if osp.isdir(osp.join(root, d))
                         and not d.startswith('.'))
        if self._from_disk:
            if not folders:
                raise FileNotFoundError(
                    f'{name}: no class folders in {root!r}')
            self._metainfo['classes'] = tuple(folders)
        classes = list(self._metainfo['classes'])
        for i, c in enumerate(classes):
            if c not in folders:
                classes[i] = _numeric_match(c, folders) or c
        self._metainfo['classes'] = tuple(classes)
        missing = [c for c in classes if c not in folders]
        if missing:
            raise FileNotFoundError(
                f'{name}: the {self.domain!r} domain in {root!r} lacks the '
                f'class folders {missing} (it has {folders[:10]}'
                f'{" ..." if len(folders) > 10 else ""})')
        samples, empty = get_samples(
            root, {c: i
                   for i, c in enumerate(classes)}, self.is_valid_file)
        if empty:
            raise FileNotFoundError(
                f'{name}: no images ({", ".join(sorted(self.extensions))}) '
                f'in the {self.domain!r} class folders {sorted(empty)} '
                f'under {root!r}')
        return samples


@DATASETS.register_module()
class DomainPairDataset:
    """Labelled source samples, each paired with a random target image.

    An epoch is one pass over the source. Item ``i`` is source sample ``i``
    (``inputs``, ``data_samples``) plus ``target_inputs``, the image of a
    target sample drawn with numpy's global generator, which mmengine seeds
    per dataloader worker and whose state every checkpoint holds (so a
    resumed run draws the pairs the uninterrupted one drew, see
    :class:`~prunedet.engine.hooks.RandomStateHook`). Only the target's image
    is returned: its label cannot reach the loss.

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
            differ = sorted(set(src) ^ set(tgt))
            raise ValueError(
                'DomainPairDataset: source and target classes differ: '
                f'{differ if differ else "same names in another order"}')
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
