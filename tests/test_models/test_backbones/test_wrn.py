import pytest
import torch
from torch import nn

from mmsakd.models.backbones import CIFARWideResNet
from mmsakd.models.backbones.wrn import WideBasicBlock
from .utils import (bn, build_classifier, build_config, check_classifies,
                    check_reference_init, check_stages, conv, fc, num_params)


def wrn_params(depth: int, k: int) -> int:
    """wrn_depth_k with 100 classes, from the layer sizes alone.

    Bias-free 3x3 stem conv; per block BN(cin), 3x3 conv cin -> cout, BN,
    3x3 conv, plus a 1x1 conv shortcut where the channels change; the final
    BN and the linear layer.
    """
    n = (depth - 4) // 6
    total = conv(3, 16, 3)
    cin = 16
    for cout in (16 * k, 32 * k, 64 * k):
        for _ in range(n):
            total += bn(cin) + conv(cin, cout, 3) + bn(cout) + conv(
                cout, cout, 3)
            if cin != cout:
                total += conv(cin, cout, 1)
            cin = cout
    return total + bn(cin) + fc(cin)


# RepDistiller/SAKD name, depth, widen factor, exact count, CRD table (M)
MODELS = [
    ('wrn_16_1', 16, 1, 180916, None),
    ('wrn_16_2', 16, 2, 703284, 0.70),
    ('wrn_40_1', 40, 1, 569780, 0.57),
    ('wrn_40_2', 40, 2, 2255156, 2.26),
    ('wrn_28_10', 28, 10, 36536884, None),
]


@pytest.mark.parametrize('name, depth, k, count, published', MODELS)
def test_parameter_counts(name, depth, k, count, published):
    model = build_classifier(
        dict(type='mmsakd.CIFARWideResNet', depth=depth, widen_factor=k),
        64 * k)
    assert wrn_params(depth, k) == count
    assert num_params(model) == count
    if published is not None:
        assert round(count / 1e6, 2) == published


@pytest.mark.parametrize('name, count', [('wrn_16_2', 703284),
                                         ('wrn_40_2', 2255156)])
def test_configs(name, count):
    model = build_config(name)
    assert type(model.backbone) is CIFARWideResNet
    assert num_params(model) == count


def test_stages_match_reference_features():
    model = build_classifier(
        dict(type='mmsakd.CIFARWideResNet', depth=16, widen_factor=2), 128)
    assert model.backbone.stage_names == ('stem', 'layer1', 'layer2', 'layer3',
                                          'final_norm')
    check_reference_init(model)
    check_stages(model, [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8),
                         (128, 8, 8)])
    check_classifies(model, 64)


def test_final_norm_is_the_reference_bn_relu_before_pooling():
    backbone = CIFARWideResNet(depth=16, widen_factor=1).eval()
    norm = backbone.final_norm
    assert isinstance(norm[0], nn.BatchNorm2d) and norm[0].num_features == 64
    feat = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        assert torch.equal(norm(feat.clone()), torch.relu(norm[0](feat)))


def test_shortcut_takes_the_preactivated_input():
    torch.manual_seed(0)
    with torch.no_grad():
        for cin, cout, stride in ((8, 16, 2), (16, 16, 1)):
            block = WideBasicBlock(cin, cout, stride).eval()
            block.conv2.weight.zero_()  # leaves only the shortcut
            block.bn1.running_mean.uniform_(-1, 1)
            x = torch.randn(2, cin, 8, 8)
            if cin == cout:
                expected = x
            else:
                act = torch.relu(block.bn1(x))
                expected = block.shortcut(act)
            assert torch.equal(block(x), expected)


def test_dropout_only_in_training():
    backbone = CIFARWideResNet(depth=16, widen_factor=1, drop_rate=0.3)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        backbone.train()
        assert not torch.equal(backbone(x)[0], backbone(x)[0])
        backbone.eval()
        assert torch.equal(backbone(x)[0], backbone(x)[0])


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=22), r'depth must be one of \(16, 28, 40\), got 22'),
    (dict(widen_factor=0), 'widen_factor must be a positive int, got 0'),
    (dict(widen_factor=1.5), 'widen_factor must be a positive int'),
    (dict(drop_rate=1.0), r'drop_rate must be in \[0, 1\)'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CIFARWideResNet(**kwargs)
