import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmsakd.models.sakd import (ConvReg, RoutingNetwork, SegmentExecutor,
                                SpotTable)
from .utils import build, images

SHAPE = (3, 32, 32)

# teacher, student, feature spots (student path, teacher path)
PAIRS = {
    'resnet14-resnet8': ('resnet14', 'resnet8', [
        ('backbone.layer1', 'backbone.layer1'),
        ('backbone.layer2', 'backbone.layer2'),
        ('backbone.layer3', 'backbone.layer3'),
    ]),
    # conv spot 16x16 (student) vs 8x8 (teacher), then the pooled vectors
    'vgg8-resnet8x4': ('vgg8', 'resnet8x4', [
        ('backbone.layer2', 'backbone.layer2'),
        ('neck', 'neck'),
    ]),
    'wrn_16_1-resnet8': ('wrn_16_1', 'resnet8', [
        ('backbone.stem', 'backbone.layer1'),
        ('backbone.layer3', 'backbone.final_norm'),
        ('neck', 'neck'),
    ]),
    # 2x2 (student) vs 8x8 (teacher): SAKD's any-factor upsampling
    'resnet8-mobilenetv2': ('resnet8', 'mobilenetv2', [
        ('backbone.layer4', 'backbone.layer3'),
    ]),
}


def routing_for(student: nn.Module, teacher: nn.Module, spots: list):
    """The routing network between named spots, on a spot table as the
    distiller builds it: executors, boundary indices, their canonical names
    and the shapes of one dry run."""
    executors = (SegmentExecutor(student,
                                 SHAPE), SegmentExecutor(teacher, SHAPE))
    indices = tuple(
        (executors[0].index(s), executors[1].index(t)) for s, t in spots)
    shapes = [e.shapes_of(e.probe(e.dry_input(SHAPE))) for e in executors]
    table = SpotTable(
        executors=executors,
        boundaries=indices,
        names=tuple((executors[0].names[s], executors[1].names[t])
                    for s, t in indices),
        shapes=tuple((shapes[0][s], shapes[1][t]) for s, t in indices),
        loss_decisions=(),
        pool_channels=0)
    return RoutingNetwork(table)


def make(pair: str):
    t_name, s_name, spots = PAIRS[pair]
    teacher = build(t_name).eval()
    student = build(s_name).train()
    return student, teacher, routing_for(student, teacher, spots)


def buffers(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.named_buffers()}


def assert_same_buffers(model: nn.Module, before: dict) -> None:
    for key, value in model.named_buffers():
        assert torch.equal(value, before[key]), key


def eval_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        out = model(x, mode='tensor')
    for m, mode in modes:
        m.training = mode
    return out


@pytest.mark.parametrize('pair', list(PAIRS))
def test_all_teacher_and_all_student_gates(pair):
    student, teacher, routing = make(pair)
    assert routing.training
    x = images(3)
    stats = buffers(student)
    ones = torch.ones(3, len(routing.spots) + 1)
    with torch.no_grad():
        z_t = teacher(x, mode='tensor')
        z_s = eval_logits(student, x)
        # exact: a 0 gate multiplies the other branch by 0 and adds it
        assert torch.equal(routing(x, ones), z_t)
        assert torch.equal(routing(x, torch.zeros_like(ones)), z_s)
    assert all(m.training for m in student.modules())
    assert_same_buffers(student, stats)


def hand_composed(routing: RoutingNetwork, x: torch.Tensor,
                  gates: list) -> torch.Tensor:
    """One sample routed by explicit branching, no masking."""
    s_exec, t_exec = routing._executors
    h_s = h_t = x
    prev_s = prev_t = None
    for m, (spot_s, spot_t) in enumerate(routing.spots):
        if gates[m]:
            h_t = t_exec.run(h_t, prev_t, spot_t)
            h_s = routing.anti_hints[m](h_t)
        else:
            h_s = s_exec.run(h_s, prev_s, spot_s)
            h_t = routing.hints[m](h_s)
        prev_s, prev_t = spot_s, spot_t
    if gates[-1]:
        return t_exec.run(h_t, prev_t)
    return s_exec.run(h_s, prev_s)


@pytest.mark.parametrize('pair', ['resnet14-resnet8', 'wrn_16_1-resnet8'])
def test_each_sample_takes_its_own_path(pair):
    student, teacher, routing = make(pair)
    # eval-mode adapters make every sample independent of the batch
    routing.eval()
    x = images(2)
    patterns = [[1, 0, 1, 0], [0, 1, 0, 1]]
    gates = torch.tensor(patterns, dtype=torch.float32)
    with torch.no_grad():
        out = routing(x, gates)
        student.eval()
        for b, pattern in enumerate(patterns):
            expected = hand_composed(routing, x[b:b + 1], pattern)
            assert torch.allclose(out[b], expected[0], atol=1e-5), b


def test_masked_batch_matches_per_sample_selection_in_train_mode():
    student, teacher, routing = make('vgg8-resnet8x4')
    x = images(4)
    patterns = [[0, 0, 0], [1, 0, 1], [0, 1, 0], [1, 1, 1]]
    gates = torch.tensor(patterns, dtype=torch.float32)
    with torch.no_grad():
        out = routing(x, gates)
        # the same computation with torch.where instead of the gate
        # arithmetic; adapters see the whole batch (BN batch statistics)
        student.eval()
        s_exec, t_exec = routing._executors
        h_s = h_t = x
        prev_s = prev_t = None
        for m, (spot_s, spot_t) in enumerate(routing.spots):
            u_s = s_exec.run(h_s, prev_s, spot_s)
            u_t = t_exec.run(h_t, prev_t, spot_t)
            pick = gates[:, m].bool().view(-1, *[1] * (u_s.dim() - 1))
            h_t, h_s = (torch.where(pick, u_t, routing.hints[m](u_s)),
                        torch.where(pick, routing.anti_hints[m](u_t), u_s))
            prev_s, prev_t = spot_s, spot_t
        z_s, z_t = s_exec.run(h_s, prev_s), t_exec.run(h_t, prev_t)
        expected = torch.where(gates[:, -1:].bool(), z_t, z_s)
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)


def test_gradients_reach_only_adapters_and_gates():
    student, teacher, routing = make('wrn_16_1-resnet8')
    for p in teacher.parameters():  # not relied upon: params are detached
        p.requires_grad_(True)
    stats = buffers(student)
    x = images(4)
    gates = torch.tensor(
        [[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]],
        dtype=torch.float32,
        requires_grad=True)
    loss = F.cross_entropy(routing(x, gates), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert gates.grad is not None
    assert torch.isfinite(gates.grad).all()
    assert (gates.grad.abs().sum(0) > 0).all()
    for adapter in list(routing.hints) + list(routing.anti_hints):
        grads = [p.grad for p in adapter.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    assert all(m.training for m in student.modules())
    assert_same_buffers(student, stats)


def test_student_mode_is_restored_on_error():
    student, teacher, routing = make('resnet14-resnet8')
    with pytest.raises(RuntimeError):
        routing(torch.randn(2, 4, 32, 32), torch.ones(2, 4))
    assert all(m.training for m in student.modules())
    student.eval()
    with pytest.raises(RuntimeError):
        routing(torch.randn(2, 4, 32, 32), torch.ones(2, 4))
    assert not any(m.training for m in student.modules())


def test_only_adapters_are_registered():
    student, teacher, routing = make('vgg8-resnet8x4')
    adapters = list(routing.hints) + list(routing.anti_hints)
    params = {id(p) for a in adapters for p in a.parameters()}
    assert {id(p) for p in routing.parameters()} == params
    assert all(
        k.startswith(('hints.', 'anti_hints.')) for k in routing.state_dict())
    assert student not in list(routing.modules())
    assert routing._executors[0].model is student
    assert routing._executors[1].model is teacher
    # the student's 128x16x16 and the teacher's 256x8x8 feature maps
    assert isinstance(routing.hints[0], ConvReg)
    assert routing.hints[0].conv.stride == (2, 2)
    assert isinstance(routing.anti_hints[0].conv, nn.ConvTranspose2d)
    assert type(routing.hints[1]) is nn.Linear
    assert (routing.hints[1].in_features,
            routing.hints[1].out_features) == (256, 512)
    assert (routing.hints[0].src_shape,
            routing.hints[0].dst_shape) == ((128, 16, 16), (256, 8, 8))


@pytest.mark.parametrize('kind, spots, num_gates, adapter', [
    ('FitNet', [('backbone.layer2', 'backbone.layer2')], 2, (32, 32)),
    ('AT', [('backbone.layer1', 'backbone.layer1'),
            ('backbone.layer2', 'backbone.layer2'),
            ('backbone.layer3', 'backbone.layer3')], 4, (16, 16)),
    ('CRD', [('neck', 'neck')], 2, (64, 64)),
])
def test_spot_kinds_of_resnet56_to_resnet20(kind, spots, num_gates, adapter):
    teacher, student = build('resnet56').eval(), build('resnet20').train()
    routing = routing_for(student, teacher, spots)
    assert len(spots) == len(routing.hints) == num_gates - 1
    first = routing.hints[0]
    if kind == 'CRD':
        assert type(first) is type(routing.anti_hints[0]) is nn.Linear
        assert (first.in_features, first.out_features) == adapter
    else:
        assert first.conv.kernel_size == (1, 1)
        assert (first.conv.in_channels, first.conv.out_channels) == adapter
    x = images(2)
    with torch.no_grad():
        out = routing(x, torch.ones(2, num_gates))
        assert torch.equal(out, teacher(x, mode='tensor'))


def test_spots_of_different_kinds_have_no_adapter():
    teacher, student = build('resnet14').eval(), build('resnet8')
    with pytest.raises(ValueError, match='ranks differ') as info:
        routing_for(student, teacher, [('backbone.layer3', 'neck')])
    assert "('backbone.layer3', 'neck')" in str(info.value)


def test_bad_gates():
    student, teacher, routing = make('resnet14-resnet8')
    x = images(2)
    with pytest.raises(ValueError, match=r'\(batch, 4\)'):
        routing(x, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r'\(batch, 4\)'):
        routing(x, torch.ones(3, 4))
