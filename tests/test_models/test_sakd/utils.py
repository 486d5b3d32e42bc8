"""Builders of small classifiers for the SAKD tests."""
import torch
from mmengine.registry import DefaultScope
from torch import nn

import mmsakd.models  # noqa: F401
from mmsakd.registry import MODELS

PREPROCESSOR = dict(type='mmpretrain.ClsDataPreprocessor')
NUM_CLASSES = 10

# name -> (backbone config, head in_channels)
BACKBONES = {
    'resnet8': (dict(type='mmsakd.CIFARResNet', depth=8), 64),
    'resnet14': (dict(type='mmsakd.CIFARResNet', depth=14), 64),
    'resnet20': (dict(type='mmsakd.CIFARResNet', depth=20), 64),
    'resnet56': (dict(type='mmsakd.CIFARResNet', depth=56), 64),
    'wrn_16_2': (dict(type='mmsakd.CIFARWideResNet', depth=16,
                      widen_factor=2), 128),
    'resnet8x4': (dict(type='mmsakd.CIFARResNet', depth=8, arch='x4'), 256),
    'wrn_16_1': (dict(type='mmsakd.CIFARWideResNet', depth=16,
                      widen_factor=1), 64),
    'vgg8': (dict(type='mmsakd.CIFARVGG', depth=8), 512),
    'mobilenetv2': (dict(type='mmsakd.CIFARMobileNetV2',
                         widen_factor=0.5), 1280),
    'mobilenetv2_w1': (dict(type='mmsakd.CIFARMobileNetV2',
                            widen_factor=1.0), 1280),
    'shufflenetv2': (dict(type='mmsakd.CIFARShuffleNetV2'), 1024),
    'mmpretrain_resnet_cifar18':
    (dict(type='mmpretrain.ResNet_CIFAR', depth=18), 512),
    'mmpretrain_resnet18': (dict(type='mmpretrain.ResNet', depth=18), 512),
    'mmpretrain_resnetv1d18': (dict(type='mmpretrain.ResNetV1d',
                                    depth=18), 512),
    'mmpretrain_mobilenetv2':
    (dict(type='mmpretrain.MobileNetV2', widen_factor=0.5), 1280),
    'mmrazor_wrn_10_1':
    (dict(type='mmrazor.WideResNet', depth=10, widen_factor=1), 64),
}


def build(name: str, **backbone_kwargs) -> nn.Module:
    """An ImageClassifier (GAP neck, linear head) around a named backbone.

    Weights keep PyTorch's default init; BN affine parameters and running
    statistics are drawn at random so that train and eval mode, and any two
    BN layers, give different results.
    """
    backbone, channels = BACKBONES[name]
    cfg = dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=PREPROCESSOR,
        backbone=dict(backbone, **backbone_kwargs),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=NUM_CLASSES,
            in_channels=channels))
    with DefaultScope.overwrite_default_scope('mmsakd'):
        model = MODELS.build(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.2, 0.2, generator=gen)
                m.running_mean.uniform_(-0.1, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return model


def images(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=gen)
