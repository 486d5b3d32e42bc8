"""CIFAR knowledge-distillation backbones with named, runnable stages."""
from .mobilenet_v2 import CIFARMobileNetV2
from .resnet import CIFARResNet
from .resnet_v2 import CIFARResNetV2
from .shufflenet_v1 import CIFARShuffleNetV1
from .shufflenet_v2 import CIFARShuffleNetV2
from .staged import StagedBackboneMixin
from .vgg import CIFARVGG
from .wrn import CIFARWideResNet

__all__ = [
    'CIFARResNet', 'CIFARWideResNet', 'CIFARVGG', 'CIFARMobileNetV2',
    'CIFARShuffleNetV1', 'CIFARShuffleNetV2', 'CIFARResNetV2',
    'StagedBackboneMixin'
]
