import pytest
import torch

from mmsakd.models.backbones import CIFARShuffleNetV2
from .utils import (bn, build_classifier, check_classifies, check_stages, conv,
                    fc, num_params, stage_shapes)


def shufflenet_v2_params(widths=(116, 232, 464, 1024),
                         repeats=(3, 7, 3)) -> int:
    """Reference ShuffleV2 with 100 classes, from the layer sizes.

    1x1 stem to 24 channels. A stage's first (stride-2) unit has a left
    branch (3x3 depthwise + 1x1) and a right branch (1x1 + 3x3 depthwise
    + 1x1) of half the stage width each; its other units convolve half the
    channels with 1x1 + 3x3 depthwise + 1x1. Every conv has a BN. Then a
    1x1 conv + BN to the last width and the linear layer.
    """
    total = conv(3, 24) + bn(24)
    cin = 24
    for width, units in zip(widths[:3], repeats):
        h = width // 2
        total += (
            conv(cin, cin, 3, groups=cin) + bn(cin) + conv(cin, h) + bn(h) +
            conv(cin, h) + bn(h) + conv(h, h, 3, groups=h) + bn(h) +
            conv(h, h) + bn(h))
        total += units * (2 * conv(h, h) + conv(h, h, 3, groups=h) + 3 * bn(h))
        cin = width
    return total + conv(cin, widths[3]) + bn(widths[3]) + fc(widths[3])


def test_parameter_count():
    model = build_classifier(dict(type='mmsakd.CIFARShuffleNetV2'), 1024)
    assert shufflenet_v2_params() == 1355528
    assert num_params(model) == 1355528
    assert round(1355528 / 1e6, 2) == 1.36  # CRD table


def test_stages_match_reference_features():
    model = build_classifier(dict(type='mmsakd.CIFARShuffleNetV2'), 1024)
    assert model.backbone.stage_names == ('stem', 'layer1', 'layer2', 'layer3',
                                          'conv2')
    check_stages(model, [(24, 32, 32), (116, 16, 16), (232, 8, 8), (464, 4, 4),
                         (1024, 4, 4)])
    check_classifies(model, 64)


def test_keeps_the_default_init_like_the_reference():
    model = build_classifier(dict(type='mmsakd.CIFARShuffleNetV2'), 1024)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.init_weights()
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_units_concatenate_then_shuffle_like_the_reference():
    backbone = CIFARShuffleNetV2().eval()
    down, split = backbone.layer2[0], backbone.layer2[1]
    assert [len(backbone.layer1), len(backbone.layer2)] == [4, 8]
    with torch.no_grad():
        x = torch.randn(2, 116, 16, 16)
        out = down(x)
        # a shuffle of 2 groups interleaves the two concatenated halves
        assert torch.equal(out[:, 0::2], down.left(x))
        assert torch.equal(out[:, 1::2], down.right(x))
        y = torch.randn(2, 232, 8, 8)
        out = split(y)
        assert torch.equal(out[:, 0::2], y[:, :116])
        assert torch.equal(out[:, 1::2], split.branch(y[:, 116:]))


def test_other_sizes():
    backbone = CIFARShuffleNetV2(widen_factor=0.5)
    assert [s[0] for s in stage_shapes(backbone).values()
            ] == [24, 48, 96, 192, 1024]
    model = build_classifier(
        dict(type='mmsakd.CIFARShuffleNetV2', widen_factor=2.0), 2048)
    assert num_params(model) == shufflenet_v2_params((224, 488, 976, 2048))


def test_bad_widen_factor():
    with pytest.raises(
            ValueError,
            match=r'widen_factor must be one of \(0.2, 0.3, 0.5, 1.0, 1.5, '
            r'2.0\), got 0.75'):
        CIFARShuffleNetV2(widen_factor=0.75)
