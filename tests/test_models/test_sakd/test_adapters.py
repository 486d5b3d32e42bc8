import pytest
import torch
from torch import nn

from mmsakd.models.sakd import ConvReg, build_adapter


def check(src, dst) -> nn.Module:
    adapter = build_adapter(src, dst).train()
    gen = torch.Generator().manual_seed(0)
    out = adapter(torch.randn(2, *src, generator=gen))
    assert tuple(out.shape) == (2, *dst)
    return adapter


# src, dst, conv type, kernel, stride, padding
BRANCHES = [
    # src_H == 2 dst_H
    ((16, 32, 32), (32, 16, 16), nn.Conv2d, (3, 3), (2, 2), (1, 1)),
    ((8, 2, 2), (4, 1, 1), nn.Conv2d, (3, 3), (2, 2), (1, 1)),
    # 2 src_H == dst_H
    ((32, 16, 16), (16, 32, 32), nn.ConvTranspose2d, (4, 4), (2, 2), (1, 1)),
    # src_H >= dst_H: 1x1 for equal sizes, else the size difference
    ((16, 8, 8), (32, 8, 8), nn.Conv2d, (1, 1), (1, 1), (0, 0)),
    ((16, 8, 8), (8, 6, 6), nn.Conv2d, (3, 3), (1, 1), (0, 0)),
    ((16, 7, 5), (8, 2, 2), nn.Conv2d, (6, 4), (1, 1), (0, 0)),
    # src_H < dst_H otherwise: stride floor(dst_H / src_H), exact kernel
    ((16, 2, 2), (8, 8, 8), nn.ConvTranspose2d, (4, 4), (4, 4), (0, 0)),
    ((16, 3, 3), (8, 8, 8), nn.ConvTranspose2d, (4, 4), (2, 2), (0, 0)),
    ((16, 1, 1), (8, 4, 4), nn.ConvTranspose2d, (4, 4), (4, 4), (0, 0)),
    ((16, 4, 4), (8, 32, 32), nn.ConvTranspose2d, (8, 8), (8, 8), (0, 0)),
    ((16, 3, 3), (8, 7, 7), nn.ConvTranspose2d, (3, 3), (2, 2), (0, 0)),
]


@pytest.mark.parametrize('src, dst, conv, kernel, stride, padding', BRANCHES)
def test_conv_branches(src, dst, conv, kernel, stride, padding):
    adapter = check(src, dst)
    assert isinstance(adapter, ConvReg)
    assert type(adapter.conv) is conv
    assert adapter.conv.kernel_size == kernel
    assert adapter.conv.stride == stride
    assert adapter.conv.padding == padding
    assert adapter.conv.bias is not None
    assert (adapter.conv.in_channels, adapter.conv.out_channels) == (src[0],
                                                                     dst[0])
    assert isinstance(adapter.bn, nn.BatchNorm2d)
    assert adapter.bn.num_features == dst[0]
    assert isinstance(adapter.relu, nn.ReLU)
    assert (adapter(torch.randn(2, *src)) >= 0).all()


def test_vectors_get_one_linear_layer():
    adapter = check((64, ), (2048, ))
    assert type(adapter) is nn.Linear
    assert (adapter.in_features, adapter.out_features) == (64, 2048)


@pytest.mark.parametrize('src, dst, match', [
    ((64, ), (64, 8, 8), 'ranks differ'),
    ((64, 8, 8), (64, ), 'ranks differ'),
    ((64, 8), (65, 8), 'the numbers of tokens differ'),
    ((2, 64, 8, 8), (2, 64, 8, 8), 'only'),
    ((4, 8, 4), (4, 4, 8), 'would give'),
    ((4, 8, 2), (4, 5, 4), 'width'),
    ((4, 2, 8), (4, 8, 2), 'width'),
    ((0, 8, 8), (4, 8, 8), 'positive'),
])
def test_bad_shapes(src, dst, match):
    with pytest.raises(ValueError, match=match):
        build_adapter(src, dst)


# feature shapes (CIFAR) of the reference's models, at the spots of its
# pairs: stage outputs feats[1..R] (AT, NST, VID) and pooled vectors (CRD)
RESNET56 = RESNET20 = [(16, 32, 32), (32, 16, 16), (64, 8, 8), (64, )]
VGG13 = [(128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 4, 4), (512, )]
VGG8 = VGG13
MOBILENETV2 = [(24, 16, 16), (32, 8, 8), (96, 4, 4), (320, 2, 2), (1280, )]
RESNET50 = [(256, 32, 32), (512, 16, 16), (1024, 8, 8), (2048, 4, 4), (2048, )]
WRN_40_2 = [(32, 32, 32), (64, 16, 16), (128, 8, 8), (128, )]
SHUFFLENETV1 = [(240, 16, 16), (480, 8, 8), (960, 4, 4), (960, )]


@pytest.mark.parametrize(
    'teacher, student, convs', [
        (RESNET56, RESNET20, [(1, 1)] * 3),
        (VGG13, MOBILENETV2, [(1, 1), (1, 1), (1, 1), (4, 3)]),
        (RESNET50, VGG8, [(4, 3), (4, 3), (4, 3), (1, 1)]),
        (WRN_40_2, SHUFFLENETV1, [(4, 3), (4, 3), (4, 3)]),
    ],
    ids=[
        'resnet56-resnet20', 'vgg13-MobileNetV2', 'ResNet50-vgg8',
        'wrn_40_2-ShuffleNetV1'
    ])
def test_reference_pairs(teacher, student, convs):
    """(hint, anti-hint) kernel sizes at every spot, then the pooled one."""
    for t_shape, s_shape, kernels in zip(teacher, student, convs + [None]):
        hint = check(s_shape, t_shape)
        anti_hint = check(t_shape, s_shape)
        if kernels is None:
            assert type(hint) is type(anti_hint) is nn.Linear
        else:
            assert (hint.conv.kernel_size[0],
                    anti_hint.conv.kernel_size[0]) == kernels
