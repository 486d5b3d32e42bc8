"""CIFAR MobileNetV2 of the knowledge-distillation benchmark."""
from typing import Optional, Sequence, Union

from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import Tensor, nn

from mmsakd.registry import MODELS
from .staged import StagedBackboneMixin
from .utils import KAIMING_FAN_OUT_INIT, conv_bn_relu


class InvertedResidual(nn.Module):
    """1x1 expansion -> 3x3 depthwise -> linear 1x1 projection.

    The expansion conv is kept even for an expansion ratio of 1, as in the
    reference, whose parameter counts include it. The input is added back
    when stride and channels are unchanged.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise conv, 1 or 2.
        expand_ratio (int): Hidden channels = ``in_channels * expand_ratio``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


@MODELS.register_module()
class CIFARMobileNetV2(StagedBackboneMixin, BaseBackbone):
    """MobileNetV2 (Sandler et al., CVPR 2018, arXiv 1801.04381) for CIFAR.

    Reproduces SAKD's ``MobileNetV2`` (``mobilev2``, width 1.0; Song et
    al., IEEE TIP 2022, arXiv 2205.02399) and, with ``widen_factor=0.5``,
    RepDistiller's ``mobile_half`` of the CRD benchmark (Tian et al., ICLR
    2020, arXiv 1910.10699), with SAKD's adaptive pooling. The stem is a
    stride-2 3x3 conv-BN-ReLU; the 17 inverted residual blocks (expansion
    6, the first 1) are grouped into four stages at the reference's
    feature boundaries: blocks of widths 16+24, 32, 64+96 and 160+320.
    The reference's 1x1 conv-BN-ReLU to 1280 channels between feats[4] and
    pooling is the extra stage ``conv2``. Pooling is left to the
    ``GlobalAveragePooling`` neck and the classifier is the head's ``fc``.

    ==========  =====================  ==================
    reference   module                 shape, width 1.0
    ==========  =====================  ==================
    feats[0]    ``backbone.stem``      32 x 16 x 16
    feats[1]    ``backbone.layer1``    24 x 16 x 16
    feats[2]    ``backbone.layer2``    32 x 8 x 8
    feats[3]    ``backbone.layer3``    96 x 4 x 4
    feats[4]    ``backbone.layer4``    320 x 2 x 2
    (none)      ``backbone.conv2``     1280 x 2 x 2
    feats[5]    ``neck``               1280
    ==========  =====================  ==================

    Args:
        widen_factor (float): Width multiplier of the stem and the blocks
            (channels are truncated to int); ``conv2`` keeps 1280 channels
            unless it is above 1. Must be > 0. Defaults to 1.0.
        expand_ratio (int): Expansion of all blocks but the first; a
            positive int. Defaults to 6.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(-1, )``, ``conv2``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to the reference's: kaiming normal (fan_out) convs,
            BN weight 1 and bias 0.
    """

    # expansion (None = expand_ratio), width, repeats, first stride; the
    # groups of blocks of each stage
    arch_settings = (
        ((1, 16, 1, 1), (None, 24, 2, 1)),
        ((None, 32, 3, 2), ),
        ((None, 64, 4, 2), (None, 96, 3, 1)),
        ((None, 160, 3, 2), (None, 320, 1, 1)),
    )
    stage_names = ('stem', 'layer1', 'layer2', 'layer3', 'layer4', 'conv2')

    def __init__(self,
                 widen_factor: float = 1.0,
                 expand_ratio: int = 6,
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[Union[dict, list]] = KAIMING_FAN_OUT_INIT):
        super().__init__(init_cfg=init_cfg)
        if (isinstance(widen_factor, bool)
                or not isinstance(widen_factor,
                                  (int, float)) or not widen_factor > 0):
            raise ValueError('CIFARMobileNetV2: widen_factor must be a '
                             f'number > 0, got {widen_factor!r}')
        if (isinstance(expand_ratio, bool)
                or not isinstance(expand_ratio, int) or expand_ratio < 1):
            raise ValueError('CIFARMobileNetV2: expand_ratio must be a '
                             f'positive int, got {expand_ratio!r}')
        self.widen_factor = widen_factor
        self.expand_ratio = expand_ratio
        in_channels = int(32 * widen_factor)
        self.stem = conv_bn_relu(3, in_channels, stride=2)
        for i, groups in enumerate(self.arch_settings):
            blocks = []
            for ratio, width, repeats, stride in groups:
                out_channels = int(width * widen_factor)
                for j in range(repeats):
                    blocks.append(
                        InvertedResidual(in_channels, out_channels,
                                         stride if j == 0 else 1, ratio
                                         or expand_ratio))
                    in_channels = out_channels
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self.out_channels = (
            int(1280 * widen_factor) if widen_factor > 1.0 else 1280)
        self.conv2 = conv_bn_relu(in_channels, self.out_channels, 1)
        self._init_stages(out_indices)
