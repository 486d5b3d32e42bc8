import math

import pytest
import torch
import torch.nn as nn

from mmsakd.models.losses import SPLoss
from mmsakd.registry import MODELS


def reference_sp(f_s, f_t):
    """Paper / RepDistiller formula written out with explicit loops."""
    n = f_s.shape[0]
    f_s = f_s.detach().reshape(n, -1).double()
    f_t = f_t.detach().reshape(n, -1).double()

    def normalised_gram(f):
        g = [[float((f[i] * f[j]).sum()) for j in range(n)] for i in range(n)]
        rows = []
        for row in g:
            norm = max(math.sqrt(sum(v * v for v in row)), 1e-12)
            rows.append([v / norm for v in row])
        return rows

    g_s, g_t = normalised_gram(f_s), normalised_gram(f_t)
    total = sum((g_t[i][j] - g_s[i][j])**2 for i in range(n) for j in range(n))
    return torch.tensor(total / (n * n), dtype=torch.float64)


def test_hand_computed_2x2():
    # G_s = I; G_t = all 2, rows normalised to 1/sqrt(2):
    # sum of squares = 2 (1 - 1/sqrt 2)^2 + 2 / 2 = 4 - 2 sqrt 2, / 4
    s = torch.tensor([[1., 0.], [0., 1.]])
    t = torch.tensor([[1., 1.], [1., 1.]])
    loss = SPLoss()(s, t)
    assert loss.dim() == 0
    assert torch.allclose(loss, torch.tensor(1 - math.sqrt(2) / 2))


@pytest.mark.parametrize('s_shape,t_shape', [((5, 3, 4, 4), (5, 6, 2, 2)),
                                             ((4, 7), (4, 9))])
def test_matches_reference(s_shape, t_shape):
    torch.manual_seed(0)
    s, t = torch.randn(s_shape), torch.randn(t_shape)
    loss = SPLoss()(s, t)
    assert torch.allclose(loss.double(), reference_sp(s, t), atol=1e-6)


def test_gradients_reach_student_not_teacher():
    torch.manual_seed(0)
    s = torch.randn(4, 3, 4, 4, requires_grad=True)
    t = torch.randn(4, 5, 4, 4, requires_grad=True)
    SPLoss()(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize('s,t', [
    (torch.randn(1, 3, 2, 2), torch.randn(1, 4, 2, 2)),
    (torch.randn(2, 3, 2, 2), torch.randn(2, 4, 2, 2)),
    (torch.zeros(3, 3, 2, 2), torch.zeros(3, 4, 2, 2)),
    (torch.zeros(3, 3, 2, 2), torch.randn(3, 4, 2, 2)),
    (torch.ones(3, 3, 2, 2), torch.ones(3, 4, 2, 2)),
])
def test_degenerate_batches_are_finite(s, t):
    s = s.clone().requires_grad_()
    loss = SPLoss()(s, t)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(s.grad).all()
    if s.shape[0] == 1:
        assert loss.item() == pytest.approx(0.0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='same batch size'):
        SPLoss()(torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match='s_feature is an empty batch'):
        SPLoss()(torch.randn(0, 3), torch.randn(0, 3))


def test_loss_weight_scales():
    torch.manual_seed(0)
    s, t = torch.randn(4, 6), torch.randn(4, 6)
    assert torch.allclose(
        SPLoss(loss_weight=3000)(s, t), 3000 * SPLoss()(s, t))


def test_build_from_registry():
    loss = MODELS.build(dict(type='mmsakd.SPLoss', loss_weight=3000))
    assert isinstance(loss, SPLoss) and loss.loss_weight == 3000


class ToyNet(nn.Module):

    def __init__(self, width):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        feat = self.stem(x)
        return self.head(feat.mean((2, 3)))


def test_inside_configurable_distiller():
    # mmrazor.models needs mmsakd's compatibility layer, imported above
    from mmrazor.models import ConfigurableDistiller

    student, teacher = ToyNet(4), ToyNet(8)
    distiller = ConfigurableDistiller(
        student_recorders=dict(feat=dict(type='ModuleOutputs', source='stem')),
        teacher_recorders=dict(feat=dict(type='ModuleOutputs', source='stem')),
        distill_losses=dict(
            loss_sp=dict(type='mmsakd.SPLoss', loss_weight=3000)),
        loss_forward_mappings=dict(
            loss_sp=dict(
                s_feature=dict(recorder='feat', from_student=True),
                t_feature=dict(recorder='feat', from_student=False))))
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    x = torch.randn(3, 3, 4, 4)
    with distiller.student_recorders, distiller.teacher_recorders:
        student(x)
        with torch.no_grad():
            teacher(x)
    losses = distiller.compute_distill_losses()
    expected = 3000 * reference_sp(student.stem(x), teacher.stem(x))
    assert set(losses) == {'loss_sp'}
    assert torch.allclose(losses['loss_sp'].double(), expected, atol=1e-4)
    losses['loss_sp'].backward()
    assert student.stem.weight.grad is not None
    assert teacher.stem.weight.grad is None
