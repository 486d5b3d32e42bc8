"""Running classifiers as chains of segments: cuts verified against the
model's own forward, boundary names, ranges, detached runs."""
import copy

import pytest
import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.models.necks import GlobalAveragePooling
from torch import nn

from mmsakd.models.sakd import SegmentExecutor
from .utils import build, images

SHAPE = (3, 32, 32)


def test_names_follow_the_modules_whose_output_a_boundary_is():
    executor = SegmentExecutor(build('resnet8'), SHAPE)
    names = executor.names
    # resnet8 has one block per stage; the stem's conv is a boundary, its
    # BN is not (an in-place ReLU overwrites it)
    assert names == ('backbone.stem.0', 'backbone.stem', 'backbone.layer1',
                     'backbone.layer2', 'backbone.layer3', 'neck', 'head')
    assert executor.index('backbone.stem.1') == 1
    # every block is a boundary
    blocks = SegmentExecutor(build('resnet14'), SHAPE).names
    assert blocks[2:4] == ('backbone.layer1.0', 'backbone.layer1')
    layer3 = executor.index('backbone.layer3')
    aliases = executor.aliases[layer3]
    # the stage, its last block and the block's last activation return
    # the same tensor; the backbone's tuple output ends with it
    assert aliases[0] == 'backbone.layer3'
    assert 'backbone.layer3.0' in aliases and 'backbone' in aliases
    # the pooling inside the neck returns a view of the neck's output
    neck = executor.index('neck')
    assert executor.index('neck.gap') == neck
    assert executor.index('head.fc') == executor.index(
        'head') == len(names) - 1 == executor.logits_index


def test_in_place_activation_moves_the_boundary():
    # MMPretrain's ResNet stem: conv1 -> bn1 -> in-place ReLU; the BN
    # output is overwritten, so the boundary is after the ReLU
    executor = SegmentExecutor(build('mmpretrain_resnet18'), SHAPE)
    relu = executor.index('backbone.relu')
    assert executor.names[relu] == 'backbone.relu'
    assert executor.index('backbone.bn1') == relu
    assert executor.names[:3] == ('backbone.conv1', 'backbone.relu',
                                  'backbone.maxpool')


def test_run_ranges_and_resume_from_every_boundary():
    model = build('resnet8').eval()
    executor = SegmentExecutor(model, SHAPE)
    x = images()
    with torch.no_grad():
        logits = model(x, mode='tensor')
        assert torch.equal(executor.run(x), logits)
        for k in range(len(executor.names)):
            mid = executor.run(x, end=k)
            assert torch.equal(executor.run(mid, start=k), logits), k
        layer1 = executor.index('backbone.layer1')
        layer3 = executor.index('backbone.layer3')
        f1 = executor.run(x, end=layer1)
        f3 = executor.run(f1, layer1, layer3)
        assert torch.equal(f3, executor.run(x, end=layer3))
        assert executor.run(f1, layer1, layer1) is f1


def test_probe_records_what_the_forward_computes():
    model = build('resnet8').train()
    executor = SegmentExecutor(model, SHAPE)
    stats = copy.deepcopy(model.state_dict())
    x = executor.dry_input(SHAPE)
    assert torch.equal(x, executor.dry_input(SHAPE))  # a fixed input
    rng = torch.get_rng_state()
    probe = executor.probe(x)
    assert torch.equal(torch.get_rng_state(), rng)
    shapes = executor.shapes_of(probe)
    assert shapes[executor.index('backbone.layer2')] == (32, 16, 16)
    assert shapes[executor.index('neck')] == (64, )
    assert shapes[-1] == (10, )
    # a dry run: no BN statistics change, every train flag is restored
    assert all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, stats[key]), key


def test_boundary_calls_are_the_calls_of_the_forward():
    executor = SegmentExecutor(build('resnet8'), SHAPE)
    assert executor.boundary_call(0) == ('backbone.stem.0', 0)
    # containers are traced through: a stage ends with its last block
    assert executor.boundary_call(
        executor.index('backbone.layer2')) == ('backbone.layer2.0', 0)
    assert executor.boundary_call(executor.logits_index) == ('head', 0)


def test_detached_params_keep_activation_grads_and_bn_updates():
    model = build('resnet8').train()
    twin = copy.deepcopy(model)
    x = images().requires_grad_()
    out = SegmentExecutor(model, SHAPE).run(x, detach_params=True)
    # train mode: batch statistics, running statistics updated as usual
    assert torch.equal(out, twin(x, mode='tensor'))
    for (key, a), b in zip(model.state_dict().items(),
                           twin.state_dict().values()):
        assert torch.equal(a, b), key
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_unknown_spot_is_rejected():
    executor = SegmentExecutor(build('resnet14'), SHAPE)
    with pytest.raises(ValueError) as info:
        executor.index('backbone.layer2.1.conv1')
    msg = str(info.value)
    assert "'backbone.layer2.1.conv1' is not a spot" in msg
    assert 'Valid spots' in msg and "'backbone.layer3'" in msg


class ReusedReLU(nn.Module):
    """One ReLU module called twice."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return (self.act(self.conv2(self.act(self.conv1(x)))), )


def classifier(backbone: nn.Module, channels: int = 8) -> nn.Module:
    return ImageClassifier(
        backbone=backbone,
        neck=GlobalAveragePooling(),
        head=LinearClsHead(num_classes=10, in_channels=channels),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'))


def test_a_module_called_twice_is_named_by_its_call():
    executor = SegmentExecutor(classifier(ReusedReLU()), SHAPE)
    assert executor.names[:4] == ('backbone.conv1', 'backbone.act[0]',
                                  'backbone.conv2', 'backbone.act[1]')
    with pytest.raises(ValueError, match='Valid spots'):
        executor.index('backbone.act')
    assert [executor.boundary_call(i) for i in (1, 3)] == [('backbone.act', 0),
                                                           ('backbone.act', 1)]


def test_not_a_classifier():
    with pytest.raises(TypeError, match='ImageClassifier-like'):
        SegmentExecutor(nn.Linear(2, 2), SHAPE)


class SumNeck(nn.Module):
    """A neck that mixes every backbone output: the head's input is not a
    function of the last output alone."""

    def forward(self, inputs):
        return (sum(x.mean((2, 3))[:, :64] for x in inputs), )


def test_a_neck_that_mixes_outputs_is_refused():
    model = build('mmpretrain_resnet_cifar18', out_indices=(0, 3))
    model.neck = SumNeck()
    model.head = LinearClsHead(num_classes=10, in_channels=64)
    with pytest.raises(ValueError, match="ending at 'neck' does not give"):
        SegmentExecutor(model, SHAPE)
