import pytest
import torch

from mmsakd.models.sakd.policy_head import SpotPolicyHead, gumbel_softmax_st
from mmsakd.registry import MODELS


def test_gates_are_exactly_binary_and_straight_through():
    torch.manual_seed(0)
    logits = torch.randn(64, 3, 2, requires_grad=True)
    y = gumbel_softmax_st(logits, tau=5.0)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y.sum(-1), torch.ones(64, 3))
    # the gradient is the soft sample's: non-zero, scaled by 1 / tau
    y[..., 0].sum().backward()
    assert logits.grad.abs().sum() > 0
    assert torch.allclose(logits.grad[..., 0], -logits.grad[..., 1])


def test_samples_follow_the_policy_distribution():
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 0.0]]).repeat(20000, 1)
    rate = gumbel_softmax_st(logits, tau=5.0)[:, 0].mean().item()
    # P(component 0) = softmax([1, 0])[0] = 0.731, whatever tau
    assert rate == pytest.approx(
        torch.sigmoid(torch.tensor(1.0)).item(), abs=0.01)


def test_distill_all_bias_init():
    head = SpotPolicyHead(in_channels=128, num_decisions=4)
    plain = SpotPolicyHead(in_channels=128, num_decisions=4, init='default')
    shift = head.fc.bias - plain.fc.bias
    assert head.fc.bias.requires_grad
    assert head.fc.weight.shape == (8, 128)
    # +10 on component 0 of every pair, relative to any default draw
    assert (head.fc.bias[0::2] > 10 - 1).all()
    assert (head.fc.bias[1::2].abs() < 1).all()
    assert (shift[0::2] > 8).all()
    torch.manual_seed(0)
    gates, logits = head(torch.randn(256, 64), torch.randn(256, 64))
    assert gates.shape == (256, 4) and logits.shape == (256, 4, 2)
    assert gates.mean() > 0.99  # distill everywhere at the start


def test_policy_input_is_detached_and_reproducible():
    head = MODELS.build(
        dict(
            type='mmsakd.SpotPolicyHead',
            in_channels=8,
            num_decisions=2,
            init='default'))
    t = torch.randn(4, 4, requires_grad=True)
    s = torch.randn(4, 4, 1, 1, requires_grad=True)  # flattened
    torch.manual_seed(3)
    gates, _ = head(t, s)
    gates.sum().backward()
    assert t.grad is None and s.grad is None
    assert head.fc.weight.grad is not None
    torch.manual_seed(3)
    again, _ = head(t, s)
    assert torch.equal(gates, again)


@pytest.mark.parametrize('kwargs, key', [
    (dict(init='zeros'), 'sakd.policy.init'),
    (dict(tau=0), 'sakd.policy.tau'),
    (dict(num_decisions=0), 'num_decisions'),
])
def test_bad_arguments(kwargs, key):
    args = dict(in_channels=8, num_decisions=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=key):
        SpotPolicyHead(**args)
