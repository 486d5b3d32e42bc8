import pytest
import torch

from mmsakd.models.backbones import CIFARResNet
from .utils import (bn, build_classifier, build_config, check_classifies,
                    check_reference_init, check_stages, conv, fc, num_params)


def basic_stage(cin: int, cout: int, n: int) -> int:
    """n basic blocks (two 3x3 conv + BN each); the first maps cin -> cout
    and, where the channels change, adds a 1x1 conv + BN projection."""
    first = conv(cin, cout, 3) + conv(cout, cout, 3) + 2 * bn(cout)
    if cin != cout:
        first += conv(cin, cout, 1) + bn(cout)
    return first + (n - 1) * (2 * conv(cout, cout, 3) + 2 * bn(cout))


def resnet_params(n: int, stem: int, widths: tuple) -> int:
    """resnet(6n+2) with 100 classes, from the layer sizes alone."""
    total = conv(3, stem, 3) + bn(stem)
    for cin, cout in zip((stem, ) + widths, widths):
        total += basic_stage(cin, cout, n)
    return total + fc(widths[-1])


# RepDistiller name, depth, arch, exact count, CRD table (M)
MODELS = [
    ('resnet8', 8, 'x1', 83892, None),
    ('resnet14', 14, 'x1', 181108, None),
    ('resnet20', 20, 'x1', 278324, 0.28),
    ('resnet32', 32, 'x1', 472756, 0.47),
    ('resnet44', 44, 'x1', 667188, None),
    ('resnet56', 56, 'x1', 861620, 0.86),
    ('resnet110', 110, 'x1', 1736564, 1.74),
    ('resnet8x4', 8, 'x4', 1233540, 1.23),
    ('resnet32x4', 32, 'x4', 7433860, 7.43),
]


@pytest.mark.parametrize('name, depth, arch, count, published', MODELS)
def test_parameter_counts(name, depth, arch, count, published):
    channels = 64 if arch == 'x1' else 256
    model = build_classifier(
        dict(type='mmsakd.CIFARResNet', depth=depth, arch=arch), channels)
    n = (depth - 2) // 6
    stem, widths = (16, (16, 32, 64)) if arch == 'x1' else (32, (64, 128, 256))
    assert resnet_params(n, stem, widths) == count
    assert num_params(model) == count
    if published is not None:
        assert round(count / 1e6, 2) == published


@pytest.mark.parametrize('name, count', [
    ('resnet20', 278324),
    ('resnet32', 472756),
    ('resnet56', 861620),
    ('resnet110', 1736564),
    ('resnet8x4', 1233540),
    ('resnet32x4', 7433860),
])
def test_configs(name, count):
    model = build_config(name)
    assert type(model.backbone) is CIFARResNet
    assert num_params(model) == count


@pytest.mark.parametrize('arch, shapes', [
    ('x1', [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]),
    ('x4', [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)]),
])
def test_stages_match_reference_features(arch, shapes):
    model = build_classifier(
        dict(type='mmsakd.CIFARResNet', depth=8, arch=arch), shapes[-1][0])
    assert model.backbone.stage_names == ('stem', 'layer1', 'layer2', 'layer3')
    check_reference_init(model)
    check_stages(model, shapes)
    check_classifies(model, 64)


def test_out_indices_and_block_layout():
    backbone = CIFARResNet(depth=20, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = backbone(torch.zeros(2, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [16, 16, 32, 64]
    assert [len(backbone.layer1), len(backbone.layer3)] == [3, 3]
    # the identity is kept where the shape allows it, as in the reference
    assert backbone.layer1[0].downsample is None
    assert backbone.layer2[0].downsample[0].stride == (2, 2)
    assert CIFARResNet(depth=8, arch='x4').layer1[0].downsample is not None


def test_init_cfg_overrides_the_reference_init():
    backbone = CIFARResNet(
        depth=8, init_cfg=dict(type='Constant', val=0.5, layer='Conv2d'))
    backbone.init_weights()
    assert torch.all(backbone.stem[0].weight == 0.5)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=18), r'depth must be one of \(8, 14, 20, 32, 44, 56, 110\)'),
    (dict(arch='x2'), r"arch must be one of \('x1', 'x4'\), got 'x2'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CIFARResNet(**kwargs)
