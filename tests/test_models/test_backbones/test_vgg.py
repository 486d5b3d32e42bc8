import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmsakd.models.backbones import CIFARVGG
from mmsakd.models.backbones.vgg import MaxPoolIfLarge
from .utils import (bn, build_classifier, build_config, check_classifies,
                    check_reference_init, check_stages, conv, fc, num_params,
                    stage_shapes)

WIDTHS = {
    8: [64, 128, 256, 512, 512],
    11: [64, 128, 256, 256, 512, 512, 512, 512],
    13: [64, 64, 128, 128, 256, 256, 512, 512, 512, 512],
    16: [64, 64, 128, 128] + [256] * 3 + [512] * 6,
    19: [64, 64, 128, 128] + [256] * 4 + [512] * 8,
}


def vgg_params(depth: int, with_bn: bool = True) -> int:
    """vgg<depth> with 100 classes: 3x3 convs with bias (+ BN), linear."""
    total, cin = 0, 3
    for width in WIDTHS[depth]:
        total += conv(cin, width, 3, bias=True) + (bn(width) if with_bn else 0)
        cin = width
    return total + fc(512)


# RepDistiller name, depth, exact count, count in M to 2 decimals (the CRD
# table's, except for vgg8: see below)
MODELS = [
    ('vgg8', 8, 3965028, 3.97),
    ('vgg11', 11, 9277284, None),
    ('vgg13', 13, 9462180, 9.46),
    ('vgg16', 16, 14774436, None),
    ('vgg19', 19, 20086692, None),
]


@pytest.mark.parametrize('name, depth, count, rounded', MODELS)
def test_parameter_counts(name, depth, count, rounded):
    model = build_classifier(dict(type='mmsakd.CIFARVGG', depth=depth), 512)
    assert len(WIDTHS[depth]) + 3 == depth  # convs + 3 FC of the original
    assert vgg_params(depth) == count
    assert num_params(model) == count
    if rounded is not None:
        assert round(count / 1e6, 2) == rounded


def test_vgg8_published_count_is_the_bn_free_model():
    # The CRD table lists vgg8 at 3.96M, but RepDistiller's 'vgg8' is
    # vgg8_bn (3,965,028 -> 3.97M); its BN-free vgg8() has 3,962,084.
    assert vgg_params(8, with_bn=False) == 3962084
    assert round(3962084 / 1e6, 2) == 3.96
    bn_params = sum(p.numel() for m in CIFARVGG(depth=8).modules()
                    if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert 3965028 - bn_params == 3962084


@pytest.mark.parametrize('name, count', [('vgg8', 3965028),
                                         ('vgg13', 9462180)])
def test_configs(name, count):
    model = build_config(name)
    assert type(model.backbone) is CIFARVGG
    assert num_params(model) == count


@pytest.mark.parametrize('size, shapes', [
    (32, [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 4, 4)]),
    (64, [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8),
          (512, 4, 4)]),
])
def test_stages_match_reference_features(size, shapes):
    model = build_classifier(dict(type='mmsakd.CIFARVGG', depth=8), 512)
    assert model.backbone.stage_names == ('stem', 'layer1', 'layer2', 'layer3',
                                          'layer4')
    check_reference_init(model)
    check_stages(model, shapes, size)


def test_pool3_only_when_the_last_block_input_is_at_least_8_high():
    backbone = CIFARVGG(depth=8)
    assert isinstance(backbone.layer4[0], MaxPoolIfLarge)
    assert all(
        isinstance(getattr(backbone, f'layer{i}')[0], nn.MaxPool2d)
        for i in (1, 2, 3))
    # layer3 output -> layer4 output, height
    for size, before, after in ((32, 4, 4), (48, 6, 6), (64, 8, 4), (128, 16,
                                                                     8)):
        shapes = stage_shapes(backbone, size)
        assert shapes['layer3'][1:] == (before, before)
        assert shapes['layer4'] == (512, after, after)
    pool = MaxPoolIfLarge(8)
    small, large = torch.randn(1, 2, 7, 7), torch.randn(1, 2, 8, 8)
    assert torch.equal(pool(small), small)
    assert torch.equal(pool(large), F.max_pool2d(large, 2, 2))


@pytest.mark.parametrize('size', [48, 64])
def test_other_sizes_still_classify(size):
    model = build_classifier(dict(type='mmsakd.CIFARVGG', depth=8), 512)
    check_classifies(model, size)


def test_bad_depth():
    with pytest.raises(
            ValueError, match=r'depth must be one of \(8, 11, 13, 16, 19\)'):
        CIFARVGG(depth=10)
