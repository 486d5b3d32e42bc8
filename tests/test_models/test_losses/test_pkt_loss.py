import math

import pytest
import torch

from mmsakd.models.losses import PKTLoss
from mmsakd.registry import MODELS

EPS = 1e-7


def reference_pkt(f_s, f_t, eps=EPS):
    """RepDistiller's PKT formula written out with explicit loops."""
    n = f_s.shape[0]
    f_s = f_s.detach().reshape(n, -1).double().tolist()
    f_t = f_t.detach().reshape(n, -1).double().tolist()

    def probabilities(f):
        unit = []
        for row in f:
            norm = math.sqrt(sum(v * v for v in row))
            unit.append([v / (norm + eps) for v in row])
        sim = [[(sum(a * b for a, b in zip(unit[i], unit[j])) + 1) / 2
                for j in range(n)] for i in range(n)]
        return [[v / sum(row) for v in row] for row in sim]

    p_s, p_t = probabilities(f_s), probabilities(f_t)
    total = sum(p_t[i][j] * math.log((p_t[i][j] + eps) / (p_s[i][j] + eps))
                for i in range(n) for j in range(n))
    return torch.tensor(total / (n * n), dtype=torch.float64)


def test_hand_computed_2x2():
    # student: orthogonal rows -> P = [[2/3, 1/3], [1/3, 2/3]];
    # teacher: parallel rows -> Q = all 1/2;
    # KL terms: 2 * 0.5 log(0.75) + 2 * 0.5 log(1.5) = log(1.125), / 4
    s = torch.tensor([[1., 0.], [0., 1.]])
    t = torch.tensor([[1., 0.], [2., 0.]])
    loss = PKTLoss()(s, t)
    assert loss.dim() == 0
    assert torch.allclose(loss, torch.tensor(math.log(1.125) / 4), atol=1e-6)


@pytest.mark.parametrize('s_shape,t_shape', [((6, 5), (6, 8)),
                                             ((4, 2, 3, 3), (4, 3, 2, 2))])
def test_matches_reference(s_shape, t_shape):
    torch.manual_seed(0)
    s, t = torch.randn(s_shape), torch.randn(t_shape)
    loss = PKTLoss()(s, t)
    assert torch.allclose(loss.double(), reference_pkt(s, t), atol=1e-6)


def test_eps_is_configurable():
    torch.manual_seed(0)
    s, t = torch.randn(4, 3) * 1e-3, torch.randn(4, 3) * 1e-3
    loss = PKTLoss(eps=1e-2)(s, t)
    assert torch.allclose(
        loss.double(), reference_pkt(s, t, eps=1e-2), atol=1e-6)


def test_gradients_reach_student_not_teacher():
    torch.manual_seed(0)
    s = torch.randn(5, 4, requires_grad=True)
    t = torch.randn(5, 6, requires_grad=True)
    PKTLoss()(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize('s,t', [
    (torch.randn(1, 4), torch.randn(1, 6)),
    (torch.randn(2, 4), torch.randn(2, 6)),
    (torch.zeros(3, 4), torch.zeros(3, 6)),
    (torch.zeros(3, 4), torch.randn(3, 6)),
    (torch.ones(3, 4), torch.ones(3, 6)),
])
def test_degenerate_batches_are_finite(s, t):
    s = s.clone().requires_grad_()
    loss = PKTLoss()(s, t)
    loss.backward()
    assert torch.isfinite(loss)
    # the zero-vector norm must not turn the gradient into NaN
    assert torch.isfinite(s.grad).all()
    if s.shape[0] == 1:
        assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_all_equal_rows_match_reference():
    s, t = torch.ones(3, 4), torch.zeros(3, 6)
    assert torch.allclose(
        PKTLoss()(s, t).double(), reference_pkt(s, t), atol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='same batch size'):
        PKTLoss()(torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match='t_feature is an empty batch'):
        PKTLoss()(torch.randn(2, 3), torch.randn(0, 3))


def test_loss_weight_scales():
    torch.manual_seed(0)
    s, t = torch.randn(4, 6), torch.randn(4, 6)
    assert torch.allclose(
        PKTLoss(loss_weight=30000)(s, t), 30000 * PKTLoss()(s, t))


def test_build_from_registry():
    loss = MODELS.build(dict(type='mmsakd.PKTLoss', loss_weight=30000))
    assert isinstance(loss, PKTLoss) and loss.loss_weight == 30000
