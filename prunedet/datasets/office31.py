"""Office-31 (Saenko et al. 2010): the preset of :class:`DomainFolder` for
``<data_root>/{amazon,dslr,webcam}/images/<class>/*.jpg`` and its 31
classes, in their fixed order."""
from mmpretrain.registry import DATASETS

from .domain_folder import DomainFolder

OFFICE31_DOMAINS = ('amazon', 'dslr', 'webcam')
OFFICE31_CLASSES = (
    'back_pack', 'bike', 'bike_helmet', 'bookcase', 'bottle', 'calculator',
    'desk_chair', 'desk_lamp', 'desktop_computer', 'file_cabinet',
    'headphones', 'keyboard', 'laptop_computer', 'letter_tray',
    'mobile_phone', 'monitor', 'mouse', 'mug', 'paper_notebook', 'pen',
    'phone', 'printer', 'projector', 'punchers', 'ring_binder', 'ruler',
    'scissors', 'speaker', 'stapler', 'tape_dispenser', 'trash_can')


@DATASETS.register_module()
class Office31(DomainFolder):
    """One domain of Office-31 (``'amazon'``, ``'dslr'`` or ``'webcam'``);
    ``classes`` (or ``metainfo=dict(classes=...)``) selects a subset."""
    METAINFO = dict(classes=OFFICE31_CLASSES)
    domains = OFFICE31_DOMAINS

    def __init__(self, data_root: str, domain: str, **kwargs):
        kwargs.setdefault('subdir', 'images')
        super().__init__(data_root, domain, **kwargs)
