"""CIFAR ShuffleNetV1 of the knowledge-distillation benchmark."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import channel_shuffle
from torch import Tensor, nn

from mmsakd.registry import MODELS
from .staged import StagedBackboneMixin
from .utils import conv_bn_relu


class ShuffleUnit(nn.Module):
    """Grouped 1x1 -> shuffle -> depthwise 3x3 -> grouped 1x1 unit.

    A stride-2 unit concatenates its branch with the 3x3 average-pooled
    input, so the branch only produces ``out_channels - in_channels``; a
    stride-1 unit adds the input. ReLU follows the merge.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (after the concatenation).
        stride (int): 1 or 2.
        groups (int): Groups of the 1x1 convs.
        group_first (bool): Whether the first 1x1 conv is grouped; not
            for the unit right after the 24-channel stem.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 groups: int,
                 group_first: bool = True):
        super().__init__()
        self.stride = stride
        branch = out_channels - in_channels if stride == 2 else out_channels
        mid = branch // 4
        self.first_groups = groups if group_first else 1
        self.conv1 = nn.Conv2d(
            in_channels, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(
            mid, mid, 3, stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, branch, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            shortcut = F.avg_pool2d(x, 3, stride=2, padding=1)
            return F.relu(torch.cat([out, shortcut], 1))
        return F.relu(out + x)


@MODELS.register_module()
class CIFARShuffleNetV1(StagedBackboneMixin, BaseBackbone):
    """ShuffleNet (Zhang et al., CVPR 2018, arXiv 1707.01083) for CIFAR.

    Reproduces RepDistiller's ``ShuffleV1`` (SAKD's ``ShuffleNetV1``) of the
    CRD benchmark (Tian et al., ICLR 2020, arXiv 1910.10699), with SAKD's
    adaptive pooling (Song et al., IEEE TIP 2022, arXiv 2205.02399): a 1x1
    conv-BN-ReLU stem to 24 channels at full resolution, then 4, 8 and 4
    shuffle units whose first unit halves the resolution. Pooling is left to
    the ``GlobalAveragePooling`` neck and the classifier is the head's
    ``fc``. Like the reference, it keeps PyTorch's default initialization.

    ==========  =====================  =============
    reference   module                 shape, g = 3
    ==========  =====================  =============
    feats[0]    ``backbone.stem``      24 x 32 x 32
    feats[1]    ``backbone.layer1``    240 x 16 x 16
    feats[2]    ``backbone.layer2``    480 x 8 x 8
    feats[3]    ``backbone.layer3``    960 x 4 x 4
    feats[4]    ``neck``               960
    ==========  =====================  =============

    Args:
        groups (int): Groups of the 1x1 convs: 3 (the benchmark model), or
            1 or 2 with the stage widths of the ShuffleNet paper. Defaults
            to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(-1, )``, the last one.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.
    """

    # stage output channels per group count; units per stage
    arch_settings = {
        1: (144, 288, 576),
        2: (200, 400, 800),
        3: (240, 480, 960)
    }
    num_units = (4, 8, 4)
    stage_names = ('stem', 'layer1', 'layer2', 'layer3')

    def __init__(self,
                 groups: int = 3,
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg=init_cfg)
        if groups not in self.arch_settings or isinstance(groups, bool):
            raise ValueError(f'CIFARShuffleNetV1: groups must be one of '
                             f'{tuple(self.arch_settings)}, got {groups!r}')
        self.groups = groups
        self.stem = conv_bn_relu(3, 24, 1)
        in_channels = 24
        widths = self.arch_settings[groups]
        for i, (width, units) in enumerate(zip(widths, self.num_units)):
            blocks = []
            for j in range(units):
                blocks.append(
                    ShuffleUnit(in_channels, width, 2 if j == 0 else 1, groups,
                                bool(i or j)))
                in_channels = width
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self._init_stages(out_indices)
