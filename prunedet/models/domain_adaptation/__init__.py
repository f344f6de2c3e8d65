"""Unsupervised domain adaptation: MMD (DAN) on torchvision's VGG-16."""
from .mmd import MKMMDLoss, mk_mmd
from .mmd_classifier import DomainPairPreprocessor, MMDClassifier
from .vgg import TorchvisionVGG16

__all__ = [
    'MKMMDLoss', 'mk_mmd', 'DomainPairPreprocessor', 'MMDClassifier',
    'TorchvisionVGG16'
]
