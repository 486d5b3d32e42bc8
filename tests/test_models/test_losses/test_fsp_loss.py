import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsakd.models.losses import FSPLoss
from mmsakd.registry import MODELS


def fsp_by_loops(bottom, top):
    """G[n][a][b] = mean over positions of top[n, a] * bottom[n, b]."""
    n, c_bot = bottom.shape[:2]
    c_top = top.shape[1]
    bottom = bottom.detach().double().reshape(n, c_bot, -1)
    top = top.detach().double().reshape(n, c_top, -1)
    g = torch.zeros(n, c_top, c_bot, dtype=torch.float64)
    for i in range(n):
        for a in range(c_top):
            for b in range(c_bot):
                g[i, a, b] = (top[i, a] * bottom[i, b]).mean()
    return g


def reference_fsp(s_feats, t_feats):
    total = torch.zeros((), dtype=torch.float64)
    for k in range(len(s_feats) - 1):
        g_s = fsp_by_loops(s_feats[k], s_feats[k + 1])
        g_t = fsp_by_loops(t_feats[k], t_feats[k + 1])
        total = total + ((g_s - g_t)**2).mean()
    return total


def test_hand_computed_1x2_maps():
    # student: (1*3 + 2*4) / 2 = 5.5, teacher: 1, loss (5.5 - 1)^2
    s = [
        torch.tensor([1., 2.]).view(1, 1, 1, 2),
        torch.tensor([3., 4.]).view(1, 1, 1, 2)
    ]
    t = [torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1, 2)]
    loss = FSPLoss()(s, t)
    assert loss.dim() == 0
    assert torch.allclose(loss, torch.tensor(20.25))


def test_matches_reference_with_consecutive_pairs_and_pooling():
    torch.manual_seed(0)
    shapes = [(2, 3, 8, 8), (2, 4, 8, 8), (2, 5, 4, 4)]
    s = [torch.randn(shape) for shape in shapes]
    t = [torch.randn(shape) for shape in shapes]
    loss = FSPLoss()(s, t)
    # the second pair pools its 8x8 bottom map down to 4x4
    expected = (
        reference_fsp(s[:2], t[:2]) + reference_fsp(
            [F.avg_pool2d(s[1], 2), s[2]], [F.avg_pool2d(t[1], 2), t[2]]))
    assert torch.allclose(loss.double(), expected, atol=1e-6)
    assert torch.allclose(loss, FSPLoss()(tuple(s), tuple(t)))


def test_larger_top_map_is_pooled():
    torch.manual_seed(0)
    s = [torch.randn(2, 3, 2, 2), torch.randn(2, 4, 4, 4)]
    t = [torch.randn(2, 3, 2, 2), torch.randn(2, 4, 4, 4)]
    expected = reference_fsp([s[0], F.avg_pool2d(s[1], 2)],
                             [t[0], F.avg_pool2d(t[1], 2)])
    assert torch.allclose(FSPLoss()(s, t).double(), expected, atol=1e-6)


def test_gradients_reach_student_not_teacher():
    torch.manual_seed(0)
    s = [torch.randn(2, 3, 4, 4, requires_grad=True) for _ in range(3)]
    t = [torch.randn(2, 3, 4, 4, requires_grad=True) for _ in range(3)]
    FSPLoss()(s, t).backward()
    for f in s:
        assert f.grad is not None and f.grad.abs().sum() > 0
    for f in t:
        assert f.grad is None


@pytest.mark.parametrize('batch,fill', [(1, None), (2, None), (3, 0.0),
                                        (3, 1.0)])
def test_degenerate_batches_are_finite(batch, fill):
    torch.manual_seed(0)

    def make():
        if fill is None:
            return torch.randn(batch, 2, 2, 2)
        return torch.full((batch, 2, 2, 2), fill)

    s = [make().requires_grad_(), make().requires_grad_()]
    t = [make(), make()]
    loss = FSPLoss()(s, t)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(f.grad).all() for f in s)
    if fill is not None:
        assert loss.item() == pytest.approx(0.0)


def test_bad_inputs_raise():
    f = torch.randn(2, 3, 2, 2)
    with pytest.raises(ValueError, match='at least 2 feature maps'):
        FSPLoss()([f], [f])
    with pytest.raises(ValueError, match='as many maps'):
        FSPLoss()([f, f, f], [f, f])
    with pytest.raises(ValueError, match=r's_feats\[1\] has 4 channels'):
        FSPLoss()([f, torch.randn(2, 4, 2, 2)], [f, f])
    with pytest.raises(ValueError, match=r't_feats\[0\] must be a 4D'):
        FSPLoss()([f, f], [torch.randn(2, 3), f])
    with pytest.raises(ValueError, match='batch size'):
        FSPLoss()([f, f], [f, torch.randn(3, 3, 2, 2)])
    with pytest.raises(TypeError, match='s_feats must be a list or tuple'):
        FSPLoss()(torch.stack([f, f]), [f, f])


def test_loss_weight_scales():
    torch.manual_seed(0)
    s = [torch.randn(2, 3, 4, 4) for _ in range(3)]
    t = [torch.randn(2, 3, 4, 4) for _ in range(3)]
    assert torch.allclose(FSPLoss(loss_weight=4)(s, t), 4 * FSPLoss()(s, t))


def test_build_from_registry():
    loss = MODELS.build(dict(type='mmsakd.FSPLoss', loss_weight=2))
    assert isinstance(loss, FSPLoss) and loss.loss_weight == 2


class ToyBackbone(nn.Module):

    def __init__(self):
        super().__init__()
        self.stage0 = nn.Conv2d(3, 2, 3, padding=1)
        self.stage1 = nn.Conv2d(2, 3, 3, padding=1)
        self.stage2 = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x):
        f0 = self.stage0(x)
        f1 = self.stage1(f0)
        return f0, f1, self.stage2(f1)


class ToyNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = ToyBackbone()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.backbone(x)[-1].mean((2, 3)))


def test_inside_configurable_distiller():
    # mmrazor.models needs mmsakd's compatibility layer, imported above
    from mmrazor.models import ConfigurableDistiller

    torch.manual_seed(0)
    student, teacher = ToyNet(), ToyNet()
    distiller = ConfigurableDistiller(
        student_recorders=dict(
            stages=dict(type='ModuleOutputs', source='backbone')),
        teacher_recorders=dict(
            stages=dict(type='ModuleOutputs', source='backbone')),
        distill_losses=dict(loss_fsp=dict(type='mmsakd.FSPLoss')),
        loss_forward_mappings=dict(
            loss_fsp=dict(
                s_feats=dict(recorder='stages', from_student=True),
                t_feats=dict(recorder='stages', from_student=False))))
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    x = torch.randn(2, 3, 4, 4)
    with distiller.student_recorders, distiller.teacher_recorders:
        student(x)
        with torch.no_grad():
            teacher(x)
    losses = distiller.compute_distill_losses()
    s_feats, t_feats = student.backbone(x), teacher.backbone(x)
    expected = (
        reference_fsp(s_feats[:2], t_feats[:2]) +
        reference_fsp([F.avg_pool2d(s_feats[1], 2), s_feats[2]],
                      [F.avg_pool2d(t_feats[1], 2), t_feats[2]]))
    assert set(losses) == {'loss_fsp'}
    assert torch.allclose(losses['loss_fsp'].double(), expected, atol=1e-6)
    losses['loss_fsp'].backward()
    assert student.backbone.stage0.weight.grad is not None
    assert teacher.backbone.stage0.weight.grad is None
