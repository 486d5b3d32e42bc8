"""Cutting backbones into units: automatic cuts by tracing, describers
for backbones that cannot be traced."""
import pytest
import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.models.backbones import ResNet_CIFAR
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.models.necks import GlobalAveragePooling
from torch import nn

from mmsakd.models.sakd import (SegmentExecutor, get_segment_describer,
                                register_segment_describer)
from mmsakd.models.sakd.cutting import (_DESCRIBERS, described_segments,
                                        trace_backbone, traced_segments)
from .test_executor import ReusedReLU
from .utils import build, images

SHAPE = (3, 32, 32)


def classifier(backbone: nn.Module, channels: int = 8) -> nn.Module:
    return ImageClassifier(
        backbone=backbone,
        neck=GlobalAveragePooling(),
        head=LinearClsHead(num_classes=10, in_channels=channels),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'))


def test_traced_segments_chain_to_the_last_output():
    backbone = build('resnet14').backbone.eval()
    trace = trace_backbone(backbone)
    segments = traced_segments(trace)
    assert len(segments) == len(trace.cuts)
    assert segments[-1].end == ('backbone.layer3.1', 0)
    x = images()
    with torch.no_grad():
        y = x
        for segment in segments:
            y = segment(y)
        assert torch.equal(y, backbone(x)[-1])


def test_several_outputs_the_head_reads_the_last():
    model = build('mmpretrain_resnet_cifar18', out_indices=(1, 3)).eval()
    x = images()
    executor = SegmentExecutor(model, SHAPE)
    assert executor.names[-3] == 'backbone.layer4'
    with torch.no_grad():
        assert torch.equal(executor.run(x), model(x, mode='tensor'))
    # the stages after the last output are not part of the chain
    model = build('mmpretrain_resnet_cifar18', out_indices=(2, )).eval()
    model.head = LinearClsHead(num_classes=10, in_channels=256)
    executor = SegmentExecutor(model, SHAPE)
    assert executor.names[-3] == 'backbone.layer3'
    assert 'backbone.layer4' not in executor.names


class Gated(nn.Module):
    """A forward that branches on a tensor value: torch.fx cannot trace
    it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        if x.sum() > 1e9:
            x = x * 0
        return (self.pool(self.relu(self.bn(self.conv(x)))), )


class GatedTwice(ReusedReLU):
    """Untraceable, and one ReLU module called twice."""

    def forward(self, x):
        if x.sum() > 1e9:
            x = x * 0
        return super().forward(x)


@pytest.fixture
def clean_describers():
    saved = dict(_DESCRIBERS)
    yield
    _DESCRIBERS.clear()
    _DESCRIBERS.update(saved)


def test_untraceable_backbone_and_custom_describer(clean_describers):
    model = classifier(Gated()).eval()
    with pytest.raises(TypeError) as info:
        SegmentExecutor(model, SHAPE)
    msg = str(info.value)
    assert 'Gated' in msg and 'register_segment_describer' in msg

    class GatedPlus(Gated):
        pass

    @register_segment_describer(Gated)
    def describe(backbone):
        return [('conv', 'bn', 'relu'), 'pool']

    with pytest.raises(KeyError, match='already registered'):
        register_segment_describer(Gated)(describe)
    for net in (Gated(), GatedPlus()):
        model = classifier(net).eval()
        executor = SegmentExecutor(model, SHAPE)
        assert executor.names == ('backbone.relu', 'backbone.pool', 'neck',
                                  'head')
        x = images()
        with torch.no_grad():
            assert torch.equal(executor.run(x), model(x, mode='tensor'))


def test_described_units_end_at_a_known_call(clean_describers):

    @register_segment_describer(GatedTwice)
    def describe(backbone):
        return [('conv1', 'act'), ('conv2', 'act')]

    model = classifier(GatedTwice()).eval()
    executor = SegmentExecutor(model, SHAPE)
    assert executor.names[:2] == ('backbone.act[0]', 'backbone.act[1]')
    # what the teacher's taps hook: the call number the dry run found
    assert [executor.boundary_call(i)
            for i in range(3)] == [('backbone.act', 0), ('backbone.act', 1),
                                   ('neck', 0)]
    x = images()
    with torch.no_grad():
        assert torch.equal(executor.run(x), model(x, mode='tensor'))


def test_a_wrong_describer_fails_the_dry_run(clean_describers):

    @register_segment_describer(Gated)
    def describe(backbone):
        return [('conv', 'relu'), 'pool']  # skips the BN

    with pytest.raises(ValueError, match='does not give the tensor'):
        SegmentExecutor(classifier(Gated()), SHAPE)


@pytest.mark.parametrize('units, message', [
    ([(), 'pool'], 'empty unit'),
    ([('conv', 'bn', 'relu'), 'pooling'], 'missing submodule'),
])
def test_describer_units_are_checked(units, message):
    with pytest.raises(ValueError, match=message):
        described_segments(Gated(), lambda backbone: units)


def test_subclass_that_overrides_forward_needs_its_own_describer(
        clean_describers):

    @register_segment_describer(ResNet_CIFAR)
    def describe(backbone):
        return ['conv1']

    class MyResNet(ResNet_CIFAR):

        def forward(self, x):
            return super().forward(x)

    with pytest.raises(TypeError, match='MyResNet overrides forward'):
        get_segment_describer(MyResNet(depth=18))
