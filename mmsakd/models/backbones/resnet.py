"""CIFAR ResNets of the knowledge-distillation benchmark (resnet8..110)."""
from typing import Optional, Sequence, Union

from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import Tensor, nn

from mmsakd.registry import MODELS
from .staged import StagedBackboneMixin
from .utils import KAIMING_FAN_OUT_INIT, conv_bn_relu


def projection(in_channels: int, out_channels: int,
               stride: int) -> Optional[nn.Sequential]:
    """1x1 conv + BN shortcut where the shape changes, else None."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
        nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut, then ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv and of the shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CIFARResNet(StagedBackboneMixin, BaseBackbone):
    """CIFAR ResNet (He et al., CVPR 2016, arXiv 1512.03385).

    Reproduces RepDistiller's ``resnet8/14/20/32/44/56/110`` (``arch='x1'``)
    and ``resnet8x4/32x4`` (``arch='x4'``), the CIFAR-100 models of the CRD
    benchmark (Tian et al., ICLR 2020, arXiv 1910.10699), as used by SAKD
    (Song et al., IEEE TIP 2022, arXiv 2205.02399) with adaptive pooling.
    A 3x3 conv-BN-ReLU stem is followed by three stages of
    ``(depth - 2) / 6`` basic blocks at strides 1, 2, 2. Pooling is left to
    MMPretrain's ``GlobalAveragePooling`` neck (adaptive, as in SAKD) and
    the reference's final linear layer is the head's ``fc``.

    ==========  =====================  ===================
    reference   module                 shape, x1 / x4
    ==========  =====================  ===================
    feats[0]    ``backbone.stem``      16 / 32 x 32 x 32
    feats[1]    ``backbone.layer1``    16 / 64 x 32 x 32
    feats[2]    ``backbone.layer2``    32 / 128 x 16 x 16
    feats[3]    ``backbone.layer3``    64 / 256 x 8 x 8
    feats[4]    ``neck``               64 / 256
    ==========  =====================  ===================

    Args:
        depth (int): One of 8, 14, 20, 32, 44, 56, 110. Defaults to 56.
        arch (str): ``'x1'`` (stem 16, stages 16, 32, 64 channels) or
            ``'x4'`` (stem 32, stages 64, 128, 256). Defaults to ``'x1'``.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(-1, )``, the last one.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to the reference's: kaiming normal (fan_out) convs,
            BN weight 1 and bias 0.
    """

    depths = (8, 14, 20, 32, 44, 56, 110)
    arch_settings = {'x1': (16, (16, 32, 64)), 'x4': (32, (64, 128, 256))}
    stage_names = ('stem', 'layer1', 'layer2', 'layer3')

    def __init__(self,
                 depth: int = 56,
                 arch: str = 'x1',
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[Union[dict, list]] = KAIMING_FAN_OUT_INIT):
        super().__init__(init_cfg=init_cfg)
        if depth not in self.depths:
            raise ValueError(f'CIFARResNet: depth must be one of '
                             f'{self.depths}, got {depth!r}')
        if arch not in self.arch_settings:
            raise ValueError(f'CIFARResNet: arch must be one of '
                             f'{tuple(self.arch_settings)}, got {arch!r}')
        self.depth = depth
        self.arch = arch
        stem_channels, channels = self.arch_settings[arch]
        self.stem = conv_bn_relu(3, stem_channels)
        in_channels = stem_channels
        for i, (out_channels, stride) in enumerate(zip(channels, (1, 2, 2))):
            blocks = []
            for j in range((depth - 2) // 6):
                blocks.append(
                    BasicBlock(in_channels, out_channels,
                               stride if j == 0 else 1))
                in_channels = out_channels
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self._init_stages(out_indices)
