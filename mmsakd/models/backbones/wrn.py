"""CIFAR Wide ResNets of the knowledge-distillation benchmark (wrn_d_k)."""
from typing import Optional, Sequence, Union

from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import Tensor, nn

from mmsakd.registry import MODELS
from .staged import StagedBackboneMixin
from .utils import KAIMING_FAN_OUT_INIT


class WideBasicBlock(nn.Module):
    """Pre-activation block: (BN-ReLU-conv3x3) x 2 plus a shortcut.

    A channel change is projected by a strided 1x1 conv applied, like the
    residual branch, to the pre-activated input; otherwise the raw input is
    added back.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv and of the projection.
        drop_rate (float): Dropout between the two convs.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 drop_rate: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(act)))
        if self.dropout is not None:
            out = self.dropout(out)
        out = self.conv2(out)
        identity = x if self.shortcut is None else self.shortcut(act)
        return identity + out


@MODELS.register_module()
class CIFARWideResNet(StagedBackboneMixin, BaseBackbone):
    """Wide ResNet (Zagoruyko & Komodakis, BMVC 2016, arXiv 1605.07146).

    Reproduces RepDistiller's ``wrn_16_1/16_2/40_1/40_2`` of the CRD
    benchmark (Tian et al., ICLR 2020, arXiv 1910.10699) and SAKD's
    ``wrn_28_10`` (Song et al., IEEE TIP 2022, arXiv 2205.02399), with
    SAKD's adaptive pooling: a plain 3x3 conv stem, three stages of
    ``(depth - 4) / 6`` pre-activation blocks at strides 1, 2, 2, and the
    final BN-ReLU. The blocks are pre-activation, so the reference applies
    that BN-ReLU between the last stage output (feats[3]) and pooling; it
    is the extra stage ``final_norm`` here. Pooling is left to the
    ``GlobalAveragePooling`` neck and the final linear layer is the head's
    ``fc``.

    ==========  ========================  ==================
    reference   module                    shape, wrn_d_2
    ==========  ========================  ==================
    feats[0]    ``backbone.stem``         16 x 32 x 32
    feats[1]    ``backbone.layer1``       32 x 32 x 32
    feats[2]    ``backbone.layer2``       64 x 16 x 16
    feats[3]    ``backbone.layer3``       128 x 8 x 8
    (none)      ``backbone.final_norm``   128 x 8 x 8
    feats[4]    ``neck``                  128
    ==========  ========================  ==================

    Args:
        depth (int): One of 16, 28, 40. Defaults to 40.
        widen_factor (int): Channel multiplier of the three stages (16, 32,
            64 channels times it); a positive int. Defaults to 2.
        drop_rate (float): Dropout inside each block, in [0, 1). The
            benchmark uses 0. Defaults to 0.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(-1, )``, ``final_norm``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to the reference's: kaiming normal (fan_out) convs,
            BN weight 1 and bias 0.
    """

    depths = (16, 28, 40)
    stage_names = ('stem', 'layer1', 'layer2', 'layer3', 'final_norm')

    def __init__(self,
                 depth: int = 40,
                 widen_factor: int = 2,
                 drop_rate: float = 0.0,
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[Union[dict, list]] = KAIMING_FAN_OUT_INIT):
        super().__init__(init_cfg=init_cfg)
        if depth not in self.depths:
            raise ValueError(f'CIFARWideResNet: depth must be one of '
                             f'{self.depths}, got {depth!r}')
        if (isinstance(widen_factor, bool)
                or not isinstance(widen_factor, int) or widen_factor < 1):
            raise ValueError('CIFARWideResNet: widen_factor must be a '
                             f'positive int, got {widen_factor!r}')
        if not 0 <= drop_rate < 1:
            raise ValueError('CIFARWideResNet: drop_rate must be in [0, 1), '
                             f'got {drop_rate!r}')
        self.depth = depth
        self.widen_factor = widen_factor
        channels = [c * widen_factor for c in (16, 32, 64)]
        self.stem = nn.Conv2d(3, 16, 3, 1, padding=1, bias=False)
        in_channels = 16
        for i, (out_channels, stride) in enumerate(zip(channels, (1, 2, 2))):
            blocks = []
            for j in range((depth - 4) // 6):
                blocks.append(
                    WideBasicBlock(in_channels, out_channels,
                                   stride if j == 0 else 1, drop_rate))
                in_channels = out_channels
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self.final_norm = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self._init_stages(out_indices)
