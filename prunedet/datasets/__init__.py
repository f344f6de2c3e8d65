from .domain_folder import DomainFolder, DomainPairDataset
from .offline_classification import (OfflineCIFAR10, OfflineFashionMNIST,
                                     OfflineMNIST)
from .office31 import Office31
from .voc import CheckedVOCDataset

__all__ = [
    'OfflineMNIST', 'OfflineFashionMNIST', 'OfflineCIFAR10', 'CheckedVOCDataset',
    'Office31', 'DomainFolder', 'DomainPairDataset'
]
