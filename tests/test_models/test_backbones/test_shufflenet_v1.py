import pytest
import torch
import torch.nn.functional as F

from mmsakd.models.backbones import CIFARShuffleNetV1
from .utils import (bn, build_classifier, build_config, check_classifies,
                    check_stages, conv, fc, num_params, stage_shapes)


def shufflenet_v1_params(widths=(240, 480, 960), g: int = 3) -> int:
    """Reference ShuffleV1 with 100 classes, from the layer sizes.

    1x1 stem to 24 channels; a unit has a grouped 1x1 conv (ungrouped on
    the 24-channel stem output) to a quarter of its branch width, a 3x3
    depthwise conv, a grouped 1x1 conv, each with BN. A stage's first unit
    concatenates its branch with the pooled input, so the branch is
    ``width - cin`` wide.
    """
    total = conv(3, 24) + bn(24)
    cin = 24
    for width, units in zip(widths, (4, 8, 4)):
        for j in range(units):
            branch = width - cin if j == 0 else width
            mid = branch // 4
            total += (
                conv(cin, mid, groups=1 if cin == 24 else g) + bn(mid) +
                conv(mid, mid, 3, groups=mid) + bn(mid) +
                conv(mid, branch, groups=g) + bn(branch))
            cin = width
    return total + fc(cin)


def test_parameter_count():
    model = build_classifier(dict(type='mmsakd.CIFARShuffleNetV1'), 960)
    assert shufflenet_v1_params() == 949258
    assert num_params(model) == 949258
    assert round(949258 / 1e6, 2) == 0.95  # CRD table


def test_config():
    model = build_config('shufflenetv1')
    assert type(model.backbone) is CIFARShuffleNetV1
    assert num_params(model) == 949258


def test_stages_match_reference_features():
    model = build_classifier(dict(type='mmsakd.CIFARShuffleNetV1'), 960)
    assert model.backbone.stage_names == ('stem', 'layer1', 'layer2', 'layer3')
    check_stages(model, [(24, 32, 32), (240, 16, 16), (480, 8, 8),
                         (960, 4, 4)])
    check_classifies(model, 64)


def test_keeps_the_default_init_like_the_reference():
    model = build_classifier(dict(type='mmsakd.CIFARShuffleNetV1'), 960)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.init_weights()
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_units_merge_like_the_reference():
    backbone = CIFARShuffleNetV1().eval()
    down, plain = backbone.layer2[0], backbone.layer2[1]
    assert backbone.layer1[0].conv1.groups == 1
    assert down.conv1.groups == plain.conv1.groups == 3
    x = torch.randn(2, 240, 16, 16).relu()
    with torch.no_grad():
        # the pooled input comes after the branch
        shortcut = F.avg_pool2d(x, 3, stride=2, padding=1)
        assert torch.equal(down(x)[:, 240:], shortcut)
        plain.bn3.weight.zero_()
        plain.bn3.bias.zero_()
        y = torch.randn(2, 480, 8, 8).relu()
        assert torch.equal(plain(y), y)


@pytest.mark.parametrize('groups, widths', [(1, (144, 288, 576)),
                                            (2, (200, 400, 800))])
def test_other_group_counts(groups, widths):
    backbone = CIFARShuffleNetV1(groups=groups)
    shapes = stage_shapes(backbone)
    assert [s[0] for s in shapes.values()] == [24, *widths]
    model = build_classifier(
        dict(type='mmsakd.CIFARShuffleNetV1', groups=groups), widths[-1])
    assert num_params(model) == shufflenet_v1_params(widths, groups)


def test_bad_groups():
    with pytest.raises(
            ValueError, match=r'groups must be one of \(1, 2, 3\), got 4'):
        CIFARShuffleNetV1(groups=4)
