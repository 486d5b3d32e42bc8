import pytest
import torch
import torchvision

from mmsakd.models.backbones import CIFARMobileNetV2
from .utils import (bn, build_classifier, build_config, check_classifies,
                    check_reference_init, check_stages, conv, fc, num_params)


def mobilenet_v2_params(w: float, t: int = 6) -> int:
    """Reference MobileNetV2 at width ``w`` with 100 classes.

    Every inverted residual has a 1x1 expansion (even at ratio 1), a 3x3
    depthwise conv and a 1x1 projection, each with BN; the last 1x1 conv
    has 1280 channels unless ``w > 1``.
    """
    cin = int(32 * w)
    total = conv(3, cin, 3) + bn(cin)
    blocks = [(1, 16, 1), (t, 24, 2), (t, 32, 3), (t, 64, 4), (t, 96, 3),
              (t, 160, 3), (t, 320, 1)]
    for ratio, width, repeats in blocks:
        cout = int(width * w)
        for _ in range(repeats):
            hidden = cin * ratio
            total += (
                conv(cin, hidden) + bn(hidden) +
                conv(hidden, hidden, 3, groups=hidden) + bn(hidden) +
                conv(hidden, cout) + bn(cout))
            cin = cout
    last = int(1280 * w) if w > 1 else 1280
    return total + conv(cin, last) + bn(last) + fc(last)


# name, widen factor, exact count, CRD table (M)
MODELS = [
    ('MobileNetV2 (SAKD)', 1.0, 2353060, None),
    ('mobile_half', 0.5, 812836, 0.81),
]


@pytest.mark.parametrize('name, w, count, published', MODELS)
def test_parameter_counts(name, w, count, published):
    model = build_classifier(
        dict(type='mmsakd.CIFARMobileNetV2', widen_factor=w), 1280)
    assert mobilenet_v2_params(w) == count
    assert num_params(model) == count
    if published is not None:
        assert round(count / 1e6, 2) == published


def test_width_1_is_torchvision_plus_the_ratio_1_expansion():
    # torchvision skips the 1x1 expansion of the first block (32 -> 32
    # channels + BN); otherwise the layer sizes agree at width 1.0
    reference = torchvision.models.mobilenet_v2(num_classes=100)
    assert num_params(reference) + 32 * 32 + 2 * 32 == 2353060


def test_config():
    model = build_config('mobilenetv2')
    assert type(model.backbone) is CIFARMobileNetV2
    assert model.backbone.widen_factor == 1.0
    assert num_params(model) == 2353060


@pytest.mark.parametrize('w, shapes', [
    (1.0, [(32, 16, 16), (24, 16, 16), (32, 8, 8), (96, 4, 4), (320, 2, 2),
           (1280, 2, 2)]),
    (0.5, [(16, 16, 16), (12, 16, 16), (16, 8, 8), (48, 4, 4), (160, 2, 2),
           (1280, 2, 2)]),
])
def test_stages_match_reference_features(w, shapes):
    model = build_classifier(
        dict(type='mmsakd.CIFARMobileNetV2', widen_factor=w), 1280)
    assert model.backbone.stage_names == ('stem', 'layer1', 'layer2', 'layer3',
                                          'layer4', 'conv2')
    check_reference_init(model)
    check_stages(model, shapes)
    check_classifies(model, 64)


def test_block_layout():
    backbone = CIFARMobileNetV2()
    layers = [getattr(backbone, f'layer{i}') for i in range(1, 5)]
    assert [len(layer) for layer in layers] == [3, 3, 7, 4]
    first = backbone.layer1[0].conv
    assert (first[0].in_channels, first[0].out_channels) == (32, 32)
    residual = [b.use_residual for layer in layers for b in layer]
    assert residual == [
        False, False, True, False, True, True, False, True, True, True, False,
        True, True, False, True, True, False
    ]
    x = torch.randn(2, 24, 8, 8)
    block = backbone.layer1[2].eval()
    with torch.no_grad():
        assert torch.equal(block(x), x + block.conv(x))


@pytest.mark.parametrize('kwargs, match', [
    (dict(widen_factor=0), 'widen_factor must be a number > 0, got 0'),
    (dict(widen_factor='1.0'), 'widen_factor must be a number > 0'),
    (dict(expand_ratio=0), 'expand_ratio must be a positive int, got 0'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CIFARMobileNetV2(**kwargs)
