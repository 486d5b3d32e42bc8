import copy
from collections import OrderedDict
from contextlib import ExitStack

import pytest
import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.models.backbones import ResNet_CIFAR
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.models.necks import GlobalAveragePooling
from mmrazor.models.task_modules import ModuleOutputsRecorder
from torch import nn

from mmsakd.models.sakd import (SegmentExecutor, get_segment_describer,
                                register_segment_describer)
from .utils import build, images

FAMILIES = [
    'resnet8', 'resnet8x4', 'wrn_16_1', 'vgg8', 'mobilenetv2', 'shufflenetv2',
    'mmpretrain_resnet_cifar18', 'mmpretrain_resnet18',
    'mmpretrain_resnetv1d18', 'mmpretrain_mobilenetv2', 'mmrazor_wrn_10_1'
]

PATHS = {
    'resnet8': ('backbone.stem', 'backbone.layer1', 'backbone.layer2',
                'backbone.layer3', 'neck', 'head.fc'),
    'wrn_16_1': ('backbone.stem', 'backbone.layer1', 'backbone.layer2',
                 'backbone.layer3', 'backbone.final_norm', 'neck', 'head.fc'),
    'mmpretrain_resnet_cifar18':
    ('backbone.relu', 'backbone.layer1', 'backbone.layer2', 'backbone.layer3',
     'backbone.layer4', 'neck', 'head.fc'),
    'mmpretrain_resnet18':
    ('backbone.relu', 'backbone.maxpool', 'backbone.layer1', 'backbone.layer2',
     'backbone.layer3', 'backbone.layer4', 'neck', 'head.fc'),
    'mmpretrain_resnetv1d18':
    ('backbone.stem', 'backbone.maxpool', 'backbone.layer1', 'backbone.layer2',
     'backbone.layer3', 'backbone.layer4', 'neck', 'head.fc'),
    'mmpretrain_mobilenetv2': ('backbone.conv1', ) +
    tuple(f'backbone.layer{i}'
          for i in range(1, 8)) + ('backbone.conv2', 'neck', 'head.fc'),
    'mmrazor_wrn_10_1':
    ('backbone.conv1', 'backbone.layer1', 'backbone.layer2', 'backbone.layer3',
     'backbone.relu', 'neck', 'head.fc'),
}


def recorded(model: nn.Module, paths, x: torch.Tensor) -> list:
    """What MMRazor recorders on ``paths`` read in a normal forward."""
    recorders = [ModuleOutputsRecorder(p) for p in paths]
    for recorder in recorders:
        recorder.initialize(model)
    with torch.no_grad(), ExitStack() as stack:
        for recorder in recorders:
            stack.enter_context(recorder)
        model(x, mode='tensor')
    data = [recorder.get_record_data() for recorder in recorders]
    return [d[-1] if isinstance(d, tuple) else d for d in data]


@pytest.mark.parametrize('name', FAMILIES)
def test_full_and_split_runs_equal_the_model(name):
    model = build(name).eval()
    executor = SegmentExecutor(model)
    if name in PATHS:
        assert executor.paths == PATHS[name]
    x = images()
    with torch.no_grad():
        logits = model(x, mode='tensor')
        assert torch.equal(executor.run(x), logits)
        shapes = executor.shapes()
        for path in executor.paths:
            mid = executor.run(x, end=path)
            assert tuple(mid.shape[1:]) == shapes[path]
            assert torch.equal(executor.run(mid, start=path), logits)
    assert list(shapes) == list(executor.paths)
    # a unit is named by its last module, so a recorder there reads its
    # output; this is what spots taken from distill recorders rely on
    feats = recorded(model, executor.paths, x)
    with torch.no_grad():
        for path, feat in zip(executor.paths, feats):
            assert torch.equal(executor.run(x, end=path), feat), path


def test_run_ranges():
    model = build('resnet8').eval()
    executor = SegmentExecutor(model)
    x = images()
    with torch.no_grad():
        f1 = executor.run(x, end='backbone.layer1')
        f3 = executor.run(f1, 'backbone.layer1', 'backbone.layer3')
        assert torch.equal(f3, executor.run(x, end='backbone.layer3'))
        assert executor.run(f1, 'backbone.layer1', 'backbone.layer1') is f1
        assert torch.equal(
            executor.run(x, end='head'), executor.run(x, end='head.fc'))
    assert executor.index('head') == executor.index('head.fc') == 5
    with pytest.raises(ValueError, match='comes after'):
        executor.run(f3, 'backbone.layer3', 'backbone.layer1')


def test_detached_params_keep_activation_grads_and_bn_updates():
    model = build('resnet8').train()
    twin = copy.deepcopy(model)
    x = images().requires_grad_()
    out = SegmentExecutor(model).run(x, detach_params=True)
    # train mode: batch statistics, running statistics updated as usual
    assert torch.equal(out, twin(x, mode='tensor'))
    for (key, a), b in zip(model.state_dict().items(),
                           twin.state_dict().values()):
        assert torch.equal(a, b), key
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize('name, shapes', [
    ('resnet20', [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8),
                  (64, )]),
    ('resnet56', [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8),
                  (64, )]),
    ('resnet8x4', [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8),
                   (256, )]),
    ('wrn_16_2', [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8),
                  (128, 8, 8), (128, )]),
    ('vgg8', [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4),
              (512, 4, 4), (512, )]),
    ('mobilenetv2_w1', [(32, 16, 16), (24, 16, 16), (32, 8, 8), (96, 4, 4),
                        (320, 2, 2), (1280, 2, 2), (1280, )]),
])
def test_shapes_match_the_reference(name, shapes):
    model = build(name).train()
    executor = SegmentExecutor(model)
    stats = copy.deepcopy(model.state_dict())
    got = executor.shapes((3, 32, 32))
    assert isinstance(got, OrderedDict)
    assert list(got.values()) == shapes + [(10, )]
    # a dry run: no BN statistics change, every train flag is restored
    assert all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, stats[key]), key


def test_spot_inside_a_stage_is_rejected():
    executor = SegmentExecutor(build('resnet14'))
    with pytest.raises(ValueError) as info:
        executor.index('backbone.layer2.1.relu')
    msg = str(info.value)
    assert "'backbone.layer2.1.relu'" in msg
    assert "inside the unit 'backbone.layer2'" in msg
    assert 'segment boundary' in msg and 'instead' in msg
    assert "'backbone.layer3'" in msg  # the valid spots are listed
    with pytest.raises(ValueError, match="inside the unit 'neck'"):
        executor.index('neck.gap')
    with pytest.raises(ValueError, match="inside the unit 'backbone.relu'"):
        SegmentExecutor(
            build('mmpretrain_resnet_cifar18')).index('backbone.conv1')


def test_unknown_spot_is_rejected():
    executor = SegmentExecutor(build('resnet8'))
    with pytest.raises(ValueError, match="unknown spot 'backbone.layer9'"):
        executor.index('backbone.layer9')
    with pytest.raises(ValueError, match='Valid spots'):
        executor.run(images(), end='backbone')


class TinyNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return (self.pool(self.relu(self.bn(self.conv(x)))), )


def classifier(backbone: nn.Module, channels: int = 8) -> nn.Module:
    return ImageClassifier(
        backbone=backbone,
        neck=GlobalAveragePooling(),
        head=LinearClsHead(num_classes=10, in_channels=channels),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'))


def test_unknown_backbone_and_custom_describer():
    model = classifier(TinyNet()).eval()
    with pytest.raises(TypeError) as info:
        SegmentExecutor(model)
    msg = str(info.value)
    assert 'TinyNet' in msg and 'register_segment_describer' in msg

    class TinyNetPlus(TinyNet):
        pass

    @register_segment_describer(TinyNet)
    def describe(backbone):
        return [('conv', 'bn', 'relu'), 'pool']

    with pytest.raises(KeyError, match='already registered'):
        register_segment_describer(TinyNet)(describe)
    for net in (TinyNet(), TinyNetPlus()):
        model = classifier(net).eval()
        executor = SegmentExecutor(model)
        assert executor.paths == ('backbone.relu', 'backbone.pool', 'neck',
                                  'head.fc')
        x = images()
        with torch.no_grad():
            assert torch.equal(executor.run(x), model(x, mode='tensor'))


def test_subclass_that_overrides_forward_needs_its_own_describer():

    class MyResNet(ResNet_CIFAR):

        def forward(self, x):
            return super().forward(x)

    backbone = MyResNet(depth=18)
    with pytest.raises(TypeError, match='MyResNet overrides forward'):
        get_segment_describer(backbone)


def test_not_a_classifier():
    with pytest.raises(TypeError, match='ImageClassifier-like'):
        SegmentExecutor(nn.Linear(2, 2))


def test_unsupported_head_and_neck():
    model = build('resnet8')
    model.head = nn.Linear(64, 10)
    with pytest.raises(TypeError, match='head Linear is not supported'):
        SegmentExecutor(model)
    model = build('resnet8')
    model.neck = nn.Flatten()
    with pytest.raises(TypeError, match='neck Flatten is not supported'):
        SegmentExecutor(model)


def test_last_output_must_be_the_last_stage():
    with pytest.raises(ValueError, match='out_indices=\\(1,\\)'):
        SegmentExecutor(build('resnet8', out_indices=(1, )))
    with pytest.raises(ValueError, match="'layer4'"):
        SegmentExecutor(build('mmpretrain_resnet_cifar18', out_indices=(2, )))
    # several outputs: the head reads the last one, the others are unused
    model = build('mmpretrain_resnet_cifar18', out_indices=(1, 3)).eval()
    x = images()
    with torch.no_grad():
        assert torch.equal(
            SegmentExecutor(model).run(x), model(x, mode='tensor'))
