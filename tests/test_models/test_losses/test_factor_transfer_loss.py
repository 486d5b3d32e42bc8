import math

import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.models.losses import FTLoss

from mmsakd.models.losses import FactorTransferLoss
from mmsakd.registry import MODELS


def reference_factor_transfer(f_s, f_t, p1=2, p2=1):
    """RepDistiller's FactorTransfer on equal spatial sizes, by loops:
    per sample, the channel mean of x ** p1 at every position, L2-normalised;
    then the mean over samples and positions of |F_s - F_t| (p2 = 1) or
    (F_s - F_t) ** p2."""

    def factor(sample):
        channels = [c.reshape(-1).tolist() for c in sample.double()]
        values = [
            sum(c[j]**p1 for c in channels) / len(channels)
            for j in range(len(channels[0]))
        ]
        norm = max(math.sqrt(sum(v * v for v in values)), 1e-12)
        return [v / norm for v in values]

    terms = []
    for s, t in zip(f_s.detach(), f_t.detach()):
        for a, b in zip(factor(s), factor(t)):
            terms.append(abs(a - b) if p2 == 1 else (a - b)**p2)
    return torch.tensor(sum(terms) / len(terms), dtype=torch.float64)


def hand_computed_inputs():
    # student: channel mean of squares [(1 + 1) / 2, (0 + 4) / 2] = [1, 2],
    # factor [1, 2] / sqrt(5); teacher: [2, 0] -> factor [1, 0]
    s = torch.tensor([[[[1., 0.]], [[1., 2.]]]])
    t = torch.tensor([[[[2., 0.]], [[0., 0.]]]])
    return s, t


def test_hand_computed():
    s, t = hand_computed_inputs()
    loss = FactorTransferLoss()
    # (|1/sqrt5 - 1| + |2/sqrt5 - 0|) / 2 = (1 + 1/sqrt5) / 2
    expected = (1 + 1 / math.sqrt(5)) / 2
    out = loss(s, t)
    assert out.dim() == 0
    assert out.item() == pytest.approx(expected, rel=1e-6)
    assert FactorTransferLoss(loss_weight=200.)(s, t).item() == pytest.approx(
        200 * expected, rel=1e-6)
    # p2 = 2: ((1/sqrt5 - 1)^2 + 4/5) / 2 = 1 - 1/sqrt5
    assert FactorTransferLoss(p2=2)(s, t).item() == pytest.approx(
        1 - 1 / math.sqrt(5), rel=1e-6)
    # p1 = 1: channel means [1, 1] -> [1, 1] / sqrt2; teacher [1, 0]
    assert FactorTransferLoss(p1=1)(s, t).item() == pytest.approx(
        (1 - 1 / math.sqrt(2) + 1 / math.sqrt(2)) / 2, rel=1e-6)


def test_is_not_mmrazor_ftloss():
    # MMRazor normalises the flattened map: s -> [1, 0, 1, 2] / sqrt6,
    # t -> [1, 0, 0, 0], so (1 - 1/sqrt6 + 1/sqrt6 + 2/sqrt6) / 4
    s, t = hand_computed_inputs()
    assert FTLoss()(s, t).item() == pytest.approx(
        (1 + 2 / math.sqrt(6)) / 4, rel=1e-6)
    assert FactorTransferLoss()(s, t).item() != pytest.approx(
        FTLoss()(s, t).item(), rel=1e-2)


@pytest.mark.parametrize('p1,p2', [(2, 1), (2, 2), (1, 1), (4, 2)])
@pytest.mark.parametrize('s_shape,t_shape', [((5, 3, 4, 4), (5, 6, 4, 4)),
                                             ((3, 32, 8, 8), (3, 32, 8, 8)),
                                             ((4, 2, 3, 5), (4, 7, 3, 5))])
def test_matches_the_reference_formula(p1, p2, s_shape, t_shape):
    torch.manual_seed(0)
    s, t = torch.randn(s_shape), torch.randn(t_shape)
    loss = FactorTransferLoss(p1=p1, p2=p2, loss_weight=3.0)
    expected = 3.0 * reference_factor_transfer(s, t, p1, p2)
    assert torch.allclose(loss(s, t).double(), expected, rtol=1e-5)


def test_larger_map_is_pooled_to_the_smaller():
    torch.manual_seed(0)
    s, t = torch.randn(3, 4, 8, 8), torch.randn(3, 5, 4, 4)
    pooled = torch.nn.functional.adaptive_avg_pool2d(s, 4)
    loss = FactorTransferLoss()
    assert torch.allclose(loss(s, t), loss(pooled, t))
    assert torch.allclose(loss(t, s), loss(t, pooled))
    assert torch.allclose(
        loss(s, t).double(), reference_factor_transfer(pooled, t), rtol=1e-5)


def test_per_sample_terms_average_to_the_loss():
    torch.manual_seed(0)
    s, t = torch.randn(6, 3, 4, 4), torch.randn(6, 5, 4, 4)
    for loss in (FactorTransferLoss(loss_weight=200.),
                 FactorTransferLoss(p1=1, p2=2, loss_weight=0.5)):
        terms = loss.per_sample(s, t)
        assert terms.shape == (6, )
        assert torch.allclose(terms.mean(), loss(s, t), rtol=1e-6)
        for i in range(6):
            assert torch.allclose(
                terms[i], loss(s[i:i + 1], t[i:i + 1]), rtol=1e-6)
    assert FactorTransferLoss.min_samples == 1


def test_gradients_reach_only_the_student():
    torch.manual_seed(0)
    s = torch.randn(4, 3, 4, 4, requires_grad=True)
    t = torch.randn(4, 3, 4, 4, requires_grad=True)
    FactorTransferLoss()(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    # the same gradient as the reference formula written with autograd
    s_ref = s.detach().clone().requires_grad_()

    def factor(f):
        v = f.pow(2).mean(1).flatten(1)
        return v / v.norm(dim=1, keepdim=True)

    (factor(s_ref) - factor(t.detach())).abs().mean().backward()
    assert torch.allclose(s.grad, s_ref.grad, rtol=1e-5, atol=1e-8)


def test_zero_maps_are_finite():
    s = torch.zeros(2, 3, 4, 4, requires_grad=True)
    out = FactorTransferLoss()(s, torch.zeros(2, 3, 4, 4))
    out.backward()
    assert out.item() == 0 and torch.isfinite(s.grad).all()


def test_bad_inputs_raise():
    loss = FactorTransferLoss()
    with pytest.raises(ValueError, match='s_feature must be a 4D'):
        loss(torch.randn(2, 4), torch.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match='same batch size'):
        loss(torch.randn(2, 4, 2, 2), torch.randn(3, 4, 2, 2))
    for bad in (0, -1, 'x', True):
        with pytest.raises(ValueError, match=r'p1 must be a positive.*p1=2'):
            FactorTransferLoss(p1=bad)
    with pytest.raises(ValueError, match='p2 must be a positive'):
        FactorTransferLoss(p2=0)


def test_build_from_registry():
    with DefaultScope.overwrite_default_scope('mmsakd'):
        loss = MODELS.build(
            dict(type='mmsakd.FactorTransferLoss', loss_weight=200.0))
    assert isinstance(loss, FactorTransferLoss)
    assert (loss.p1, loss.p2, loss.loss_weight) == (2, 1, 200.0)
