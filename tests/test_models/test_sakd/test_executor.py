"""Cutting classifiers into segments: automatic cuts verified against the
model's own forward, boundary names, ranges, detached runs, describers."""
import copy

import pytest
import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.models.backbones import ResNet_CIFAR
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.models.necks import GlobalAveragePooling
from torch import nn

from mmsakd.models.sakd import (SegmentExecutor, get_segment_describer,
                                register_segment_describer)
from mmsakd.models.sakd.segments import _DESCRIBERS, eval_mode
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


def test_a_wrong_describer_fails_the_dry_run(clean_describers):

    @register_segment_describer(Gated)
    def describe(backbone):
        return [('conv', 'relu'), 'pool']  # skips the BN

    with pytest.raises(ValueError, match='does not give the tensor'):
        SegmentExecutor(classifier(Gated()), SHAPE)


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


def test_eval_mode_restores_each_flag_also_on_error():
    model = build('resnet8').train()
    model.backbone.layer1.eval()
    with pytest.raises(RuntimeError):
        with eval_mode(model):
            assert not any(m.training for m in model.modules())
            raise RuntimeError
    assert model.training and model.backbone.layer2.training
    assert not model.backbone.layer1.training


@pytest.mark.parametrize('name', ['resnet8', 'vgg8', 'mobilenetv2'])
def test_folded_bn_runs_give_the_same_tensors_and_follow_the_weights(name):
    model = build(name).eval().double()
    executor = SegmentExecutor(model, SHAPE)
    x = images(4).double().requires_grad_()
    mid = executor.index(executor.names[len(executor.names) // 2])

    def run(fold_bn, **kwargs):
        out = executor.run(
            executor.run(x, end=mid, fold_bn=fold_bn),
            mid,
            fold_bn=fold_bn,
            detach_params=True)
        grad, = torch.autograd.grad(out.logsumexp(1).sum(), x)
        return out, grad

    out, grad = run(False)
    out_f, grad_f = run(True)
    # exact up to rounding (float64), activation gradients included, and
    # never a gradient into the weights
    assert torch.allclose(out_f, out, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad_f, grad, rtol=1e-8, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())
    folded = [chain for _, chain in executor._folded.values()]
    assert len(folded) == 2
    bns = [
        m for chain in folded for m in chain.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if name == 'resnet8':  # every BN follows a convolution
        assert bns == []
    else:
        assert len(bns) < sum(
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            for m in model.modules())
    # new weights (a loaded checkpoint): the folded copy follows
    state = {
        k: v * 1.1 if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    model.load_state_dict(state)
    out, _ = run(False)
    out_f, _ = run(True)
    assert torch.allclose(out_f, out, rtol=1e-10, atol=1e-12)
    # BN in train mode: no folding, the detached run itself
    model.train()
    with torch.no_grad():
        assert torch.equal(
            executor.run(x, fold_bn=True), executor.run(x, detach_params=True))
