from .offline_classification import (OfflineCIFAR10, OfflineFashionMNIST,
                                     OfflineMNIST)

__all__ = ['OfflineMNIST', 'OfflineFashionMNIST', 'OfflineCIFAR10']
