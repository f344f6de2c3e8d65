from .cifar_googlenet import CIFARGoogLeNet
from .cifar_resnet import CIFARResNet
from .vgg16 import VGG16

__all__ = ['CIFARGoogLeNet', 'CIFARResNet', 'VGG16']
