"""The CIFAR KD benchmark's models, rewritten compactly to test against.

Module names, parameter names and forward passes follow the model classes of
RepDistiller (``models/resnet.py``, ``wrn.py``, ``vgg.py``,
``mobilenetv2.py``, ``ShuffleNetv1.py``, ``ShuffleNetv2.py``,
``resnetv2.py``), which SAKD copies, so a state dict of these models has
exactly the keys of a benchmark checkpoint. What only serves feature
distillation (``is_feat``, ``preact``, ``get_feat_modules``) is left out.

The final pooling is the one difference between the two codes: RepDistiller
averages with a fixed kernel (8 for the ResNets and WRNs, 4 for the
ShuffleNets, 2 for MobileNetV2; VGG and ResNet18..152 pool adaptively),
SAKD with adaptive pooling throughout. ``fixed_pool`` picks RepDistiller's.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _pool(x: Tensor, kernel: Optional[int], fixed: bool) -> Tensor:
    if fixed and kernel is not None:
        x = F.avg_pool2d(x, kernel)
    else:
        x = F.adaptive_avg_pool2d(x, 1)
    return x.view(x.size(0), -1)


def _channel_shuffle(x: Tensor, groups: int) -> Tensor:
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).permute(0, 2, 1, 3,
                                                        4).reshape(n, c, h, w)


class Classifier(nn.Module):
    """Holds the pooling choice shared by all reference models."""

    pool_kernel: Optional[int] = None
    fixed_pool = True

    def pool(self, x: Tensor) -> Tensor:
        return _pool(x, self.pool_kernel, self.fixed_pool)


# ``models/resnet.py``: resnet8..110, resnet8x4, resnet32x4
class BasicBlock(nn.Module):

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 stride: int = 1,
                 downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        return F.relu(out)


class ResNet(Classifier):
    pool_kernel = 8

    def __init__(self, depth: int, filters: Sequence[int], num_classes: int):
        super().__init__()
        n = (depth - 2) // 6
        self.inplanes = filters[0]
        self.conv1 = nn.Conv2d(3, filters[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(filters[1], n)
        self.layer2 = self._make_layer(filters[2], n, 2)
        self.layer3 = self._make_layer(filters[3], n, 2)
        self.fc = nn.Linear(filters[3], num_classes)

    def _make_layer(self,
                    planes: int,
                    blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.pool(x))


# ``models/wrn.py``: wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2
class WideBlock(nn.Module):

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None
        if not self.equal_in_out:
            self.convShortcut = nn.Conv2d(
                in_planes, out_planes, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # a projected block pre-activates its input for both paths
        if self.equal_in_out:
            out = self.relu1(self.bn1(x))
        else:
            x = self.relu1(self.bn1(x))
            out = x
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        shortcut = x if self.equal_in_out else self.convShortcut(x)
        return torch.add(shortcut, out)


class NetworkBlock(nn.Module):

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBlock(out_planes if i else in_planes, out_planes,
                      1 if i else stride) for i in range(n)
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(Classifier):
    pool_kernel = 8

    def __init__(self, depth: int, widen_factor: int, num_classes: int):
        super().__init__()
        channels = [
            16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor
        ]
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, channels[0], channels[1], 1)
        self.block2 = NetworkBlock(n, channels[1], channels[2], 2)
        self.block3 = NetworkBlock(n, channels[2], channels[3], 2)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(channels[3], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(self.pool(self.relu(self.bn1(out))))


# ``models/vgg.py``: vgg8_bn .. vgg19_bn
VGG_CFG = {
    8: [[64], [128], [256], [512], [512]],
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
    19: [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


class VGG(Classifier):

    def __init__(self, depth: int, num_classes: int):
        super().__init__()
        in_channels = 3
        for i, widths in enumerate(VGG_CFG[depth]):
            layers: List[nn.Module] = []
            for width in widths:
                layers += [
                    nn.Conv2d(in_channels, width, 3, padding=1),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True)
                ]
                in_channels = width
            # the block's last ReLU is applied in forward
            self.add_module(f'block{i}', nn.Sequential(*layers[:-1]))
        for i in range(4):
            self.add_module(f'pool{i}', nn.MaxPool2d(2, 2))
        self.pool4 = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x.shape[2]
        x = F.relu(self.block0(x))
        x = F.relu(self.block1(self.pool0(x)))
        x = F.relu(self.block2(self.pool1(x)))
        x = F.relu(self.block3(self.pool2(x)))
        # SAKD's test, x.shape[2] >= 8, is the same on 32 and 64 inputs
        if h == 64:
            x = self.pool3(x)
        x = F.relu(self.block4(x))
        return self.classifier(self.pool4(x).view(x.size(0), -1))


# ``models/mobilenetv2.py``: mobile_half (width 0.5), SAKD's mobilev2 (1.0)
class InvertedResidual(nn.Module):

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup))

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(Classifier):
    # input_size // 16; its ceil_mode does not matter on the 2x2 map
    pool_kernel = 2

    def __init__(self, width_mult: float, num_classes: int, t: int = 6):
        super().__init__()
        settings = [[1, 16, 1, 1], [t, 24, 2, 1], [t, 32, 3, 2], [t, 64, 4, 2],
                    [t, 96, 3, 1], [t, 160, 3, 2], [t, 320, 1, 1]]
        channels = int(32 * width_mult)
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList()
        for ratio, width, n, stride in settings:
            out = int(width * width_mult)
            layers = []
            for s in [stride] + [1] * (n - 1):
                layers.append(InvertedResidual(channels, out, s, ratio))
                channels = out
            self.blocks.append(nn.Sequential(*layers))
        last = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, last, 1, 1, 0, bias=False),
            nn.BatchNorm2d(last), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        for block in self.blocks:
            out = block(out)
        return self.classifier(self.pool(self.conv2(out)))


# ``models/ShuffleNetv1.py``: ShuffleV1
class ShuffleV1Block(nn.Module):

    def __init__(self, in_planes: int, out_planes: int, stride: int,
                 groups: int):
        super().__init__()
        self.stride = stride
        mid = int(out_planes / 4)
        # the first unit sees the 24-channel stem and does not group
        self.g = 1 if in_planes == 24 else groups
        self.conv1 = nn.Conv2d(in_planes, mid, 1, groups=self.g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_planes, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 2:
            self.shortcut = nn.Sequential(nn.AvgPool2d(3, 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = _channel_shuffle(out, self.g)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.shortcut(x)
        return F.relu(
            torch.cat([out, res], 1) if self.stride == 2 else out + res)


class ShuffleNetV1(Classifier):
    pool_kernel = 4

    def __init__(self,
                 num_classes: int,
                 out_planes=(240, 480, 960),
                 num_blocks=(4, 8, 4),
                 groups: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_planes = 24
        for i, (planes, n) in enumerate(zip(out_planes, num_blocks)):
            layers = []
            for j in range(n):
                # a stride-2 unit concatenates its pooled input
                cat = in_planes if j == 0 else 0
                layers.append(
                    ShuffleV1Block(in_planes, planes - cat, 2 if j == 0 else 1,
                                   groups))
                in_planes = planes
            self.add_module(f'layer{i + 1}', nn.Sequential(*layers))
        self.linear = nn.Linear(out_planes[2], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(self.pool(out))


# ``models/ShuffleNetv2.py``: ShuffleV2 (net size 1)
class ShuffleV2Block(nn.Module):

    def __init__(self, in_channels: int, split_ratio: float = 0.5):
        super().__init__()
        self.split_ratio = split_ratio
        c = int(in_channels * split_ratio)
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x: Tensor) -> Tensor:
        c = int(x.size(1) * self.split_ratio)
        x1, x2 = x[:, :c], x[:, c:]
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return _channel_shuffle(torch.cat([x1, out], 1), 2)


class ShuffleV2Down(nn.Module):

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        # left: depthwise (strided) then pointwise
        self.conv1 = nn.Conv2d(
            in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        # right: pointwise, depthwise (strided), pointwise
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: Tensor) -> Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return _channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(Classifier):
    pool_kernel = 4

    def __init__(self,
                 num_classes: int,
                 out_channels=(116, 232, 464, 1024),
                 num_blocks=(3, 7, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        for i, (width, n) in enumerate(zip(out_channels, num_blocks)):
            layers = [ShuffleV2Down(in_channels, width)]
            layers += [ShuffleV2Block(width) for _ in range(n)]
            self.add_module(f'layer{i + 1}', nn.Sequential(*layers))
            in_channels = width
        self.conv2 = nn.Conv2d(in_channels, out_channels[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.linear = nn.Linear(out_channels[3], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.linear(self.pool(out))


# ``models/resnetv2.py``: ResNet18 .. ResNet152
def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
        nn.BatchNorm2d(out_planes))


class BasicBlockV2(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class BottleneckV2(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = _shortcut(in_planes, 4 * planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNetV2(Classifier):

    def __init__(self, block: type, num_blocks: Sequence[int],
                 num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            layers = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(block(in_planes, planes, stride))
                in_planes = planes * block.expansion
            self.add_module(f'layer{i + 1}', nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            out = getattr(self, f'layer{i}')(out)
        return self.linear(self.avgpool(out).view(out.size(0), -1))


def _resnet_x1(depth: int) -> Callable[[int], nn.Module]:
    return lambda n: ResNet(depth, [16, 16, 32, 64], n)


def _resnet_x4(depth: int) -> Callable[[int], nn.Module]:
    return lambda n: ResNet(depth, [32, 64, 128, 256], n)


# the benchmark's model dict, with SAKD's width-1.0 MobileNetV2
MODEL_DICT: Dict[str, Callable[[int], nn.Module]] = {
    **{
        f'resnet{d}': _resnet_x1(d)
        for d in (8, 14, 20, 32, 44, 56, 110)
    },
    'resnet8x4': _resnet_x4(8),
    'resnet32x4': _resnet_x4(32),
    'wrn_16_1': lambda n: WideResNet(16, 1, n),
    'wrn_16_2': lambda n: WideResNet(16, 2, n),
    'wrn_40_1': lambda n: WideResNet(40, 1, n),
    'wrn_40_2': lambda n: WideResNet(40, 2, n),
    **{
        f'vgg{d}': (lambda d: lambda n: VGG(d, n))(d)
        for d in VGG_CFG
    },
    'mobile_half': lambda n: MobileNetV2(0.5, n),
    'MobileNetV2': lambda n: MobileNetV2(1.0, n),
    'ShuffleV1': lambda n: ShuffleNetV1(n),
    'ShuffleV2': lambda n: ShuffleNetV2(n),
    'ResNet18': lambda n: ResNetV2(BasicBlockV2, [2, 2, 2, 2], n),
    'ResNet34': lambda n: ResNetV2(BasicBlockV2, [3, 4, 6, 3], n),
    'ResNet50': lambda n: ResNetV2(BottleneckV2, [3, 4, 6, 3], n),
}


def build(arch: str, num_classes: int = 100) -> Classifier:
    """A reference model by the benchmark's name."""
    return MODEL_DICT[arch](num_classes)


def _normal_fan_out(conv: nn.Conv2d) -> None:
    # N(0, 2 / n) with n = k * k * C_out, written out as in wrn.py, vgg.py
    # and mobilenetv2.py
    n = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
    conv.weight.data.normal_(0, (2.0 / n)**0.5)


def reference_init(model: nn.Module) -> nn.Module:
    """Apply the initialisation each reference family's constructor does.

    The classes above keep PyTorch's constructor defaults; the benchmark's
    constructors then run these loops:

    * ``resnet.py``, ``resnetv2.py``: conv ``kaiming_normal_`` (fan_out,
      relu), BN weight 1 and bias 0; the linear layer keeps PyTorch's
      default.
    * ``wrn.py``: conv N(0, 2 / (k * k * C_out)), BN 1 / 0, linear bias 0
      (its weight keeps PyTorch's default).
    * ``vgg.py``, ``mobilenetv2.py``: conv N(0, 2 / (k * k * C_out)) and
      conv bias 0, BN 1 / 0, linear N(0, 0.01) and bias 0.
    * ``ShuffleNetv1.py``, ``ShuffleNetv2.py``: none (PyTorch's defaults).
    """
    for m in model.modules():
        if isinstance(model, (ResNet, ResNetV2)):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        elif isinstance(model, (WideResNet, VGG, MobileNetV2)):
            linear_normal = not isinstance(model, WideResNet)
            if isinstance(m, nn.Conv2d):
                _normal_fan_out(m)
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                if linear_normal:
                    m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()
    return model
