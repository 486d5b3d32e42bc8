import pytest
import torchvision

from mmsakd.models.backbones import CIFARResNetV2
from .utils import (bn, build_classifier, build_config, check_classifies,
                    check_reference_init, check_stages, conv, fc, num_params)


def resnet50_params() -> int:
    """Reference ResNet50 with 100 classes, from the layer sizes.

    3x3 stem conv to 64 + BN; bottlenecks 1x1 -> 3x3 -> 1x1 (4x) with BN,
    and a 1x1 conv + BN projection in each stage's first block.
    """
    total = conv(3, 64, 3) + bn(64)
    cin = 64
    for width, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        out = 4 * width
        total += conv(cin, out) + bn(out)  # projection
        for _ in range(blocks):
            total += (
                conv(cin, width) + bn(width) + conv(width, width, 3) +
                bn(width) + conv(width, out) + bn(out))
            cin = out
    return total + fc(cin)


def torchvision_with_cifar_stem(arch: str) -> int:
    """torchvision's ImageNet ResNet with the 7x7 stem conv made 3x3."""
    reference = getattr(torchvision.models, arch)(num_classes=100)
    return num_params(reference) - 3 * 64 * 49 + 3 * 64 * 9


@pytest.mark.parametrize('depth, count, published', [
    (18, 11220132, None),
    (50, 23705252, 23.71),
])
def test_parameter_counts(depth, count, published):
    model = build_classifier(
        dict(type='mmsakd.CIFARResNetV2', depth=depth),
        512 if depth < 50 else 2048)
    assert torchvision_with_cifar_stem(f'resnet{depth}') == count
    if depth == 50:
        assert resnet50_params() == count
    assert num_params(model) == count
    if published is not None:
        assert round(count / 1e6, 2) == published


def test_deeper_variants_match_torchvision():
    for depth in (34, 101):
        out = 512 if depth < 50 else 2048
        assert num_params(CIFARResNetV2(depth=depth)) + fc(out) == (
            torchvision_with_cifar_stem(f'resnet{depth}'))


def test_config():
    model = build_config('resnet50')
    assert type(model.backbone) is CIFARResNetV2
    assert num_params(model) == 23705252


def test_stages_match_reference_features():
    model = build_classifier(dict(type='mmsakd.CIFARResNetV2', depth=50), 2048)
    assert model.backbone.stage_names == ('stem', 'layer1', 'layer2', 'layer3',
                                          'layer4')
    check_reference_init(model)
    check_stages(model, [(64, 32, 32), (256, 32, 32), (512, 16, 16),
                         (1024, 8, 8), (2048, 4, 4)])
    check_classifies(model, 64)


def test_bad_depth():
    with pytest.raises(
            ValueError,
            match=r'depth must be one of \(18, 34, 50, 101, 152\), got 56'):
        CIFARResNetV2(depth=56)
