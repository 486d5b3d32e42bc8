"""CIFAR ShuffleNetV2 of the knowledge-distillation benchmark."""
from typing import Optional, Sequence, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import channel_shuffle
from torch import Tensor, nn

from mmsakd.registry import MODELS
from .staged import StagedBackboneMixin
from .utils import conv_bn_relu


def conv_bn(in_channels: int,
            out_channels: int,
            kernel_size: int = 1,
            stride: int = 1,
            depthwise: bool = False,
            relu: bool = True) -> nn.Sequential:
    """Conv (bias-free, 'same' padding) -> BN, optionally -> ReLU."""
    layers = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=in_channels if depthwise else 1,
            bias=False),
        nn.BatchNorm2d(out_channels)
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DownUnit(nn.Module):
    """Stride-2 unit: two strided branches, concatenated and shuffled.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels, half from each branch.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        self.left = nn.Sequential(
            conv_bn(in_channels, in_channels, 3, 2, True, relu=False),
            conv_bn(in_channels, mid))
        self.right = nn.Sequential(
            conv_bn(in_channels, mid), conv_bn(mid, mid, 3, 2, True, False),
            conv_bn(mid, mid))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat([self.left(x), self.right(x)], 1)
        return channel_shuffle(out, 2)


class SplitUnit(nn.Module):
    """Stride-1 unit: half the channels pass, the other half is convolved.

    Args:
        channels (int): Input and output channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.split = channels // 2
        half = channels - self.split
        self.branch = nn.Sequential(
            conv_bn(half, half), conv_bn(half, half, 3, 1, True, False),
            conv_bn(half, half))

    def forward(self, x: Tensor) -> Tensor:
        kept, processed = x[:, :self.split], x[:, self.split:]
        out = torch.cat([kept, self.branch(processed)], 1)
        return channel_shuffle(out, 2)


@MODELS.register_module()
class CIFARShuffleNetV2(StagedBackboneMixin, BaseBackbone):
    """ShuffleNet V2 (Ma et al., ECCV 2018, arXiv 1807.11164) for CIFAR.

    Reproduces RepDistiller's ``ShuffleV2`` (SAKD's ``ShuffleNetV2``) of
    the CRD benchmark (Tian et al., ICLR 2020, arXiv 1910.10699), with
    SAKD's adaptive pooling (Song et al., IEEE TIP 2022, arXiv
    2205.02399): a 1x1 conv-BN-ReLU stem to 24 channels at full
    resolution, then three stages of one stride-2 unit and 3, 7, 3
    stride-1 units. The reference's 1x1 conv-BN-ReLU between feats[3] and
    pooling is the extra stage ``conv2``. Pooling is left to the
    ``GlobalAveragePooling`` neck and the classifier is the head's ``fc``.
    Like the reference, it keeps PyTorch's default initialization.

    ==========  =====================  ================
    reference   module                 shape, size 1.0
    ==========  =====================  ================
    feats[0]    ``backbone.stem``      24 x 32 x 32
    feats[1]    ``backbone.layer1``    116 x 16 x 16
    feats[2]    ``backbone.layer2``    232 x 8 x 8
    feats[3]    ``backbone.layer3``    464 x 4 x 4
    (none)      ``backbone.conv2``     1024 x 4 x 4
    feats[4]    ``neck``               1024
    ==========  =====================  ================

    Args:
        widen_factor (float): Network size of the reference table: 0.2,
            0.3, 0.5, 1.0 (the benchmark model), 1.5 or 2.0. Defaults to
            1.0.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(-1, )``, ``conv2``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.
    """

    # stage widths + conv2 width, stride-1 units per stage
    arch_settings = {
        0.2: ((40, 80, 160, 512), (3, 3, 3)),
        0.3: ((40, 80, 160, 512), (3, 7, 3)),
        0.5: ((48, 96, 192, 1024), (3, 7, 3)),
        1.0: ((116, 232, 464, 1024), (3, 7, 3)),
        1.5: ((176, 352, 704, 1024), (3, 7, 3)),
        2.0: ((224, 488, 976, 2048), (3, 7, 3)),
    }
    stage_names = ('stem', 'layer1', 'layer2', 'layer3', 'conv2')

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg=init_cfg)
        if (isinstance(widen_factor, bool)
                or widen_factor not in self.arch_settings):
            raise ValueError(
                'CIFARShuffleNetV2: widen_factor must be one of '
                f'{tuple(self.arch_settings)}, got {widen_factor!r}')
        self.widen_factor = widen_factor
        widths, repeats = self.arch_settings[widen_factor]
        self.stem = conv_bn_relu(3, 24, 1)
        in_channels = 24
        for i, (width, units) in enumerate(zip(widths, repeats)):
            blocks = [DownUnit(in_channels, width)]
            blocks += [SplitUnit(width) for _ in range(units)]
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            in_channels = width
        self.conv2 = conv_bn_relu(in_channels, widths[3], 1)
        self._init_stages(out_indices)
