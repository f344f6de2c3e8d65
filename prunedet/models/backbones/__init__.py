from .cifar_resnet import CIFARResNet
from .vgg16 import VGG16

__all__ = ['CIFARResNet', 'VGG16']
