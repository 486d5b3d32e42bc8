"""ImageNet-layout ResNets (ResNet18..152) for CIFAR, e.g. the ResNet50."""
from typing import Optional, Sequence, Union

from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import Tensor, nn

from mmsakd.registry import MODELS
from .resnet import BasicBlock, projection
from .staged import StagedBackboneMixin
from .utils import KAIMING_FAN_OUT_INIT, conv_bn_relu


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 (x4 channels) conv-BN plus a shortcut.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels, 4 times the inner width.
        stride (int): Stride of the 3x3 conv and of the shortcut.
    """

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        mid = out_channels // self.expansion
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CIFARResNetV2(StagedBackboneMixin, BaseBackbone):
    """ResNet (He et al., CVPR 2016, arXiv 1512.03385) with a CIFAR stem.

    Reproduces the models of RepDistiller's ``resnetv2.py``, whose
    ``ResNet50`` is the bottleneck teacher of the CRD benchmark (Tian et
    al., ICLR 2020, arXiv 1910.10699); SAKD (Song et al., IEEE TIP 2022,
    arXiv 2205.02399) also lists ResNet18/34/101/152. "V2" names that file,
    not the pre-activation ResNet. The ImageNet stages (64, 128, 256, 512
    inner channels at strides 1, 2, 2, 2) follow a stride-1 3x3
    conv-BN-ReLU stem without max pooling. Pooling is left to the
    ``GlobalAveragePooling`` neck (adaptive, as in the reference) and the
    final linear layer is the head's ``fc``.

    ==========  =====================  =================
    reference   module                 shape, depth 50
    ==========  =====================  =================
    feats[0]    ``backbone.stem``      64 x 32 x 32
    feats[1]    ``backbone.layer1``    256 x 32 x 32
    feats[2]    ``backbone.layer2``    512 x 16 x 16
    feats[3]    ``backbone.layer3``    1024 x 8 x 8
    feats[4]    ``backbone.layer4``    2048 x 4 x 4
    feats[5]    ``neck``               2048
    ==========  =====================  =================

    Args:
        depth (int): One of 18, 34 (basic blocks), 50, 101, 152
            (bottlenecks). Defaults to 50.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(-1, )``, the last one.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to the reference's: kaiming normal (fan_out) convs,
            BN weight 1 and bias 0.
    """

    arch_settings = {
        18: (BasicBlock, 1, (2, 2, 2, 2)),
        34: (BasicBlock, 1, (3, 4, 6, 3)),
        50: (Bottleneck, 4, (3, 4, 6, 3)),
        101: (Bottleneck, 4, (3, 4, 23, 3)),
        152: (Bottleneck, 4, (3, 8, 36, 3)),
    }
    stage_names = ('stem', 'layer1', 'layer2', 'layer3', 'layer4')

    def __init__(self,
                 depth: int = 50,
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[Union[dict, list]] = KAIMING_FAN_OUT_INIT):
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'CIFARResNetV2: depth must be one of '
                             f'{tuple(self.arch_settings)}, got {depth!r}')
        self.depth = depth
        block, expansion, repeats = self.arch_settings[depth]
        self.stem = conv_bn_relu(3, 64)
        in_channels = 64
        widths = (64, 128, 256, 512)
        for i, (width, num,
                stride) in enumerate(zip(widths, repeats, (1, 2, 2, 2))):
            blocks = []
            for j in range(num):
                blocks.append(
                    block(in_channels, width * expansion,
                          stride if j == 0 else 1))
                in_channels = width * expansion
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self._init_stages(out_indices)
