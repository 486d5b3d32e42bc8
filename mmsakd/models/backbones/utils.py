"""Layer helpers shared by the CIFAR distillation backbones."""
from torch import nn

# The reference models draw conv weights from N(0, 2 / (k * k * C_out)),
# i.e. kaiming normal in fan_out mode, zero any conv bias, and start every
# BN at weight 1, bias 0; this is that scheme as an MMEngine ``init_cfg``.
KAIMING_FAN_OUT_INIT = [
    dict(
        type='Kaiming',
        layer='Conv2d',
        mode='fan_out',
        nonlinearity='relu',
        distribution='normal',
        bias=0),
    dict(type='Constant', val=1, bias=0, layer=['_BatchNorm', 'GroupNorm']),
]


def conv_bn_relu(in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 bias: bool = False) -> nn.Sequential:
    """Conv with 'same' padding -> BN -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            bias=bias), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
