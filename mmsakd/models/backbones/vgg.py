"""CIFAR VGGs with BN of the knowledge-distillation benchmark (vgg8..19)."""
from typing import Optional, Sequence, Union

import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import Tensor, nn

from mmsakd.registry import MODELS
from .staged import StagedBackboneMixin
from .utils import KAIMING_FAN_OUT_INIT, conv_bn_relu


class MaxPoolIfLarge(nn.Module):
    """2x2 max pooling (stride 2) of maps at least ``min_size`` high.

    On 32x32 CIFAR images the last VGG block then still sees 4x4 maps,
    while 64x64 Tiny-ImageNet images are pooled to the same 4x4.
    """

    def __init__(self, min_size: int = 8):
        super().__init__()
        self.min_size = min_size

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[2] >= self.min_size:
            return F.max_pool2d(x, kernel_size=2, stride=2)
        return x

    def extra_repr(self) -> str:
        return f'min_size={self.min_size}'


@MODELS.register_module()
class CIFARVGG(StagedBackboneMixin, BaseBackbone):
    """VGG with BN (Simonyan & Zisserman, ICLR 2015, arXiv 1409.1556).

    Reproduces RepDistiller's ``vgg8/11/13/16/19`` (the ``*_bn`` models
    that its model dict names so) of the CRD benchmark (Tian et al., ICLR
    2020, arXiv 1910.10699) as changed by SAKD (Song et al., IEEE TIP 2022,
    arXiv 2205.02399): five blocks of 3x3 conv (with bias)-BN-ReLU, the
    first four followed by 2x2 max pooling, except that the pooling before
    the last block is applied only when its input is at least 8 high
    (64x64 inputs), and adaptive pooling. Stage k >= 1 holds the pooling
    before block k, as the reference's stage boundaries do. Pooling is left
    to the ``GlobalAveragePooling`` neck and the classifier is the head's
    ``fc`` (512 inputs).

    ==========  =====================  ===============================
    reference   module                 shape, 32x32 (64x64) input
    ==========  =====================  ===============================
    feats[0]    ``backbone.stem``      64 x 32 x 32 (64 x 64 x 64)
    feats[1]    ``backbone.layer1``    128 x 16 x 16 (128 x 32 x 32)
    feats[2]    ``backbone.layer2``    256 x 8 x 8 (256 x 16 x 16)
    feats[3]    ``backbone.layer3``    512 x 4 x 4 (512 x 8 x 8)
    feats[4]    ``backbone.layer4``    512 x 4 x 4 (512 x 4 x 4)
    feats[5]    ``neck``               512
    ==========  =====================  ===============================

    Args:
        depth (int): One of 8, 11, 13, 16, 19. Defaults to 13.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(-1, )``, the last one.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to the reference's: kaiming normal (fan_out) convs with
            zero bias, BN weight 1 and bias 0.
    """

    # conv widths of the five blocks
    arch_settings = {
        8: ((64, ), (128, ), (256, ), (512, ), (512, )),
        11: ((64, ), (128, ), (256, 256), (512, 512), (512, 512)),
        13: ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
        16: ((64, 64), (128, 128), (256, ) * 3, (512, ) * 3, (512, ) * 3),
        19: ((64, 64), (128, 128), (256, ) * 4, (512, ) * 4, (512, ) * 4),
    }
    stage_names = ('stem', 'layer1', 'layer2', 'layer3', 'layer4')

    def __init__(self,
                 depth: int = 13,
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[Union[dict, list]] = KAIMING_FAN_OUT_INIT):
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'CIFARVGG: depth must be one of '
                             f'{tuple(self.arch_settings)}, got {depth!r}')
        self.depth = depth
        in_channels = 3
        for i, widths in enumerate(self.arch_settings[depth]):
            layers = []
            if i == 4:
                layers.append(MaxPoolIfLarge(8))
            elif i > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for width in widths:
                layers.extend(conv_bn_relu(in_channels, width, bias=True))
                in_channels = width
            self.add_module(self.stage_names[i], nn.Sequential(*layers))
        self._init_stages(out_indices)
