import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsakd.models.losses import VIDLoss
from mmsakd.registry import MODELS


def reference_vid(loss, f_s, f_t):
    """Gaussian NLL of the teacher given the regressed mean, by einsum."""
    convs = [m for m in loss.regressor if isinstance(m, nn.Conv2d)]
    w1, w2, w3 = (c.weight.detach().double()[:, :, 0, 0] for c in convs)
    x = f_s.detach().double()
    x = torch.einsum('oc,nchw->nohw', w1, x).clamp(min=0)
    x = torch.einsum('oc,nchw->nohw', w2, x).clamp(min=0)
    mean = torch.einsum('oc,nchw->nohw', w3, x)
    var = torch.log(1 + torch.exp(loss.log_scale.detach().double()))
    var = (var + loss.eps).view(1, -1, 1, 1)
    t = f_t.detach().double()
    return (0.5 * ((mean - t)**2 / var + torch.log(var))).mean()


def test_initial_variance_and_architecture():
    loss = VIDLoss(3, 5)
    assert torch.allclose(loss.pred_var, torch.full((5, ), 5.0))
    convs = [m for m in loss.regressor if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 5), (5, 5),
                                                                (5, 5)]
    assert all(c.kernel_size == (1, 1) and c.bias is None for c in convs)
    assert sum(isinstance(m, nn.ReLU) for m in loss.regressor) == 2
    assert VIDLoss(3, 5, mid_channels=7).regressor[0].out_channels == 7
    assert torch.allclose(
        VIDLoss(3, 5, init_pred_var=2.0).pred_var, torch.full((5, ), 2.0))


def test_hand_computed_1x1():
    # unit weights pass a positive input through: mean = 2, target = 1,
    # var = 5: 0.5 * (1 / 5 + log 5)
    loss = VIDLoss(1, 1)
    for conv in loss.regressor[::2]:
        nn.init.ones_(conv.weight)
    s = torch.full((1, 1, 1, 1), 2.0)
    t = torch.full((1, 1, 1, 1), 1.0)
    out = loss(s, t)
    assert out.dim() == 0
    expected = 0.5 * (1 / 5 + math.log(5))
    assert torch.allclose(out, torch.tensor(expected), atol=1e-5)


def test_matches_reference():
    torch.manual_seed(0)
    loss = VIDLoss(3, 4)
    with torch.no_grad():
        loss.log_scale.uniform_(-1, 2)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 4, 4, 4)
    assert torch.allclose(
        loss(s, t).double(), reference_vid(loss, s, t), atol=1e-6)


@pytest.mark.parametrize('s_size,t_size', [(8, 4), (4, 8)])
def test_larger_map_is_pooled(s_size, t_size):
    torch.manual_seed(0)
    loss = VIDLoss(3, 4)
    s = torch.randn(2, 3, s_size, s_size)
    t = torch.randn(2, 4, t_size, t_size)
    expected = reference_vid(loss, F.avg_pool2d(s, s_size // 4),
                             F.avg_pool2d(t, t_size // 4))
    assert torch.allclose(loss(s, t).double(), expected, atol=1e-6)


def test_pooled_vectors_are_1x1_maps():
    torch.manual_seed(0)
    loss = VIDLoss(3, 4)
    s, t = torch.randn(5, 3), torch.randn(5, 4)
    assert torch.allclose(
        loss(s, t), loss(s[..., None, None], t[..., None, None]))


def test_gradients_reach_student_regressor_and_variance_not_teacher():
    torch.manual_seed(0)
    loss = VIDLoss(3, 4)
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 4, 4, 4, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    params = dict(loss.named_parameters())
    assert set(params) == {
        'regressor.0.weight', 'regressor.2.weight', 'regressor.4.weight',
        'log_scale'
    }
    for name, param in params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('s,t', [
    (torch.randn(1, 3, 2, 2), torch.randn(1, 4, 2, 2)),
    (torch.randn(2, 3, 2, 2), torch.randn(2, 4, 2, 2)),
    (torch.zeros(3, 3, 2, 2), torch.zeros(3, 4, 2, 2)),
    (torch.ones(3, 3, 2, 2), torch.ones(3, 4, 2, 2)),
])
def test_degenerate_batches_are_finite(s, t):
    loss = VIDLoss(3, 4)
    s = s.clone().requires_grad_()
    out = loss(s, t)
    out.backward()
    assert torch.isfinite(out)
    assert torch.isfinite(s.grad).all()


def test_large_log_scale_does_not_overflow():
    loss = VIDLoss(3, 4)
    with torch.no_grad():
        loss.log_scale.fill_(200.0)
    out = loss(torch.randn(2, 3, 2, 2), torch.randn(2, 4, 2, 2))
    assert torch.isfinite(out)


def test_bad_inputs_raise():
    loss = VIDLoss(3, 4)
    with pytest.raises(ValueError, match='s_feature has 2 channels'):
        loss(torch.randn(2, 2, 2, 2), torch.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match='t_feature has 5 channels'):
        loss(torch.randn(2, 3, 2, 2), torch.randn(2, 5, 2, 2))
    with pytest.raises(ValueError, match='same batch size'):
        loss(torch.randn(2, 3, 2, 2), torch.randn(3, 4, 2, 2))
    with pytest.raises(ValueError, match='init_pred_var'):
        VIDLoss(3, 4, init_pred_var=0.0)


def test_loss_weight_scales():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 4, 4, 4)
    torch.manual_seed(1)
    unit = VIDLoss(3, 4)
    torch.manual_seed(1)
    weighted = VIDLoss(3, 4, loss_weight=2.5)
    assert torch.allclose(weighted(s, t), 2.5 * unit(s, t))


def test_build_from_registry():
    loss = MODELS.build(
        dict(type='mmsakd.VIDLoss', student_channels=3, teacher_channels=4))
    assert isinstance(loss, VIDLoss)
    assert loss.regressor[0].in_channels == 3
