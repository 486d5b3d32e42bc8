import math

import pytest
import torch
import torch.nn.functional as F

from mmsakd.models.losses import NSTLoss
from mmsakd.registry import MODELS


def reference_nst(f_s, f_t):
    """Squared MMD of the neurons, polynomial kernel (x^T y)^2, by loops."""
    n = f_s.shape[0]
    f_s = f_s.detach().double().reshape(n, f_s.shape[1], -1).tolist()
    f_t = f_t.detach().double().reshape(n, f_t.shape[1], -1).tolist()

    def unit(v):
        norm = max(math.sqrt(sum(x * x for x in v)), 1e-12)
        return [x / norm for x in v]

    def kernel_mean(a, b):
        values = [sum(x * y for x, y in zip(u, v))**2 for u in a for v in b]
        return sum(values) / len(values)

    total = 0.0
    for i in range(n):
        s = [unit(c) for c in f_s[i]]
        t = [unit(c) for c in f_t[i]]
        total += (
            kernel_mean(t, t) + kernel_mean(s, s) - 2 * kernel_mean(s, t))
    return torch.tensor(total / n, dtype=torch.float64)


@pytest.mark.parametrize(
    't_map,expected',
    [
        ([0., 1.], 2.0),  # orthogonal neurons: 1 + 1 - 0
        ([3., 3.], 1.0),  # 45 degrees: 1 + 1 - 2 * 0.5
        ([2., 0.], 0.0),  # same direction
    ])
def test_hand_computed_single_neuron(t_map, expected):
    s = torch.tensor([1., 0.]).view(1, 1, 1, 2)
    t = torch.tensor(t_map).view(1, 1, 1, 2)
    loss = NSTLoss()(s, t)
    assert loss.dim() == 0
    assert torch.allclose(loss, torch.tensor(expected), atol=1e-6)


def test_matches_reference():
    torch.manual_seed(0)
    s, t = torch.randn(3, 4, 3, 3), torch.randn(3, 6, 3, 3)
    loss = NSTLoss()(s, t)
    assert torch.allclose(loss.double(), reference_nst(s, t), atol=1e-6)


@pytest.mark.parametrize('s_size,t_size', [(8, 4), (4, 8)])
def test_larger_map_is_pooled(s_size, t_size):
    torch.manual_seed(0)
    s = torch.randn(2, 3, s_size, s_size)
    t = torch.randn(2, 5, t_size, t_size)
    pooled_s = F.avg_pool2d(s, s_size // 4)
    pooled_t = F.avg_pool2d(t, t_size // 4)
    loss = NSTLoss()(s, t)
    assert torch.allclose(
        loss.double(), reference_nst(pooled_s, pooled_t), atol=1e-6)


def test_gradients_reach_student_not_teacher():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 5, 4, 4, requires_grad=True)
    NSTLoss()(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize('s,t', [
    (torch.randn(1, 3, 2, 2), torch.randn(1, 4, 2, 2)),
    (torch.randn(2, 3, 2, 2), torch.randn(2, 4, 2, 2)),
    (torch.zeros(3, 3, 2, 2), torch.zeros(3, 4, 2, 2)),
    (torch.zeros(3, 3, 2, 2), torch.randn(3, 4, 2, 2)),
    (torch.ones(3, 3, 2, 2), torch.ones(3, 4, 2, 2)),
    (torch.randn(2, 3, 1, 1), torch.randn(2, 4, 1, 1)),
])
def test_degenerate_batches_are_finite(s, t):
    s = s.clone().requires_grad_()
    loss = NSTLoss()(s, t)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(s.grad).all()
    assert torch.allclose(loss.double(), reference_nst(s, t), atol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='s_feature must be a 4D tensor'):
        NSTLoss()(torch.randn(2, 3), torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match='same batch size'):
        NSTLoss()(torch.randn(2, 3, 2, 2), torch.randn(3, 3, 2, 2))


def test_loss_weight_scales():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    assert torch.allclose(NSTLoss(loss_weight=50)(s, t), 50 * NSTLoss()(s, t))


def test_build_from_registry():
    loss = MODELS.build(dict(type='mmsakd.NSTLoss', loss_weight=50))
    assert isinstance(loss, NSTLoss) and loss.loss_weight == 50
