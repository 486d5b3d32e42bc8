import math

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from mmsakd.models.losses import CCLoss
from mmsakd.registry import MODELS
from tests.test_models.test_losses.utils import gated_call


def embed(linear, f):
    w = linear.weight.detach().double()
    b = linear.bias.detach().double()
    return f.detach().double().reshape(f.shape[0], -1) @ w.t() + b


def reference_repdistiller(loss, f_s, f_t):
    """Consecutive-sample correlation of |e_s - e_t|, by loops."""
    e_s = embed(loss.embed_s, f_s).tolist()
    e_t = embed(loss.embed_t, f_t).tolist()
    delta = [[abs(a - b) for a, b in zip(rs, rt)] for rs, rt in zip(e_s, e_t)]
    terms = [
        sum(x * y for x, y in zip(delta[i], delta[i + 1]))
        for i in range(len(delta) - 1)
    ]
    return torch.tensor(sum(terms) / len(terms), dtype=torch.float64)


def reference_gaussian_rbf(loss, f_s, f_t, gamma=0.4, p_order=2):
    """Taylor-expanded RBF correlation matrices and their MSE, by loops."""

    def correlation(e):
        unit = [[v / math.sqrt(sum(x * x for x in row)) for v in row]
                for row in e.tolist()]
        n = len(unit)
        corr = [[0.0] * n for _ in range(n)]
        for i in range(n):
            for j in range(n):
                sim = sum(a * b for a, b in zip(unit[i], unit[j]))
                corr[i][j] = sum(
                    math.exp(-2 * gamma) * (2 * gamma)**p / math.factorial(p) *
                    sim**p for p in range(p_order + 1))
        return corr

    c_s = correlation(embed(loss.embed_s, f_s))
    c_t = correlation(embed(loss.embed_t, f_t))
    n = len(c_s)
    total = sum((c_s[i][j] - c_t[i][j])**2 for i in range(n) for j in range(n))
    return torch.tensor(total / (n * n), dtype=torch.float64)


def identity_embeddings(loss):
    for linear in (loss.embed_s, loss.embed_t):
        nn.init.eye_(linear.weight)
        nn.init.zeros_(linear.bias)
    return loss


def test_embeddings_are_owned_linear_layers():
    loss = CCLoss(student_channels=6, teacher_channels=10)
    assert isinstance(loss.embed_s, nn.Linear)
    assert (loss.embed_s.in_features, loss.embed_s.out_features) == (6, 128)
    assert (loss.embed_t.in_features, loss.embed_t.out_features) == (10, 128)
    names = {name for name, _ in loss.named_parameters()}
    assert names == {
        'embed_s.weight', 'embed_s.bias', 'embed_t.weight', 'embed_t.bias'
    }


def test_hand_computed_repdistiller():
    # |s - t| = [[1, 2], [2, 3], [1, 0]]: pairs 1*2 + 2*3 = 8 and
    # 2*1 + 3*0 = 2, mean 5
    loss = identity_embeddings(CCLoss(2, 2, feat_dim=2))
    s = torch.tensor([[1., 2.], [3., 4.], [0., 0.]])
    t = torch.tensor([[0., 0.], [1., 1.], [1., 0.]])
    out = loss(s, t)
    assert out.dim() == 0
    assert torch.allclose(out, torch.tensor(5.0))


def test_hand_computed_gaussian_rbf():
    # student cosines: I, teacher cosines: all 1; off-diagonal correlations
    # differ by exp(-0.8) * (0.8 + 0.32), two of four entries
    loss = identity_embeddings(CCLoss(2, 2, feat_dim=2, mode='gaussian_rbf'))
    s = torch.tensor([[1., 0.], [0., 1.]])
    t = torch.tensor([[1., 0.], [3., 0.]])
    expected = 2 * (1.12 * math.exp(-0.8))**2 / 4
    assert torch.allclose(loss(s, t), torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize('s_shape,t_shape', [((6, 5), (6, 7)),
                                             ((4, 2, 2, 2), (4, 3, 1, 1))])
def test_matches_reference(s_shape, t_shape):
    torch.manual_seed(0)
    s, t = torch.randn(s_shape), torch.randn(t_shape)
    s_dim, t_dim = s[0].numel(), t[0].numel()
    loss = CCLoss(s_dim, t_dim, feat_dim=16)
    assert torch.allclose(
        loss(s, t).double(), reference_repdistiller(loss, s, t), atol=1e-5)
    rbf = CCLoss(s_dim, t_dim, feat_dim=16, mode='gaussian_rbf')
    assert torch.allclose(
        rbf(s, t).double(), reference_gaussian_rbf(rbf, s, t), atol=1e-6)
    rbf3 = CCLoss(
        s_dim, t_dim, feat_dim=16, mode='gaussian_rbf', gamma=0.7, p_order=3)
    assert torch.allclose(
        rbf3(s, t).double(),
        reference_gaussian_rbf(rbf3, s, t, gamma=0.7, p_order=3),
        atol=1e-6)


def test_high_order_expansion_approaches_the_rbf_kernel():
    torch.manual_seed(0)
    loss = CCLoss(4, 4, feat_dim=8, mode='gaussian_rbf', p_order=12)
    e = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    exact = torch.exp(-0.4 * torch.cdist(e, e).pow(2))
    assert torch.allclose(loss.correlation(e), exact, atol=1e-6)


@pytest.mark.parametrize('mode', ['repdistiller', 'gaussian_rbf'])
def test_gradients_default_trains_both_embeddings(mode):
    torch.manual_seed(0)
    loss = CCLoss(4, 6, feat_dim=8, mode=mode)
    s = torch.randn(5, 4, requires_grad=True)
    t = torch.randn(5, 6, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    for name, param in loss.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('mode', ['repdistiller', 'gaussian_rbf'])
def test_detach_teacher_embed_freezes_embed_t(mode):
    torch.manual_seed(0)
    kept = CCLoss(4, 6, feat_dim=8, mode=mode)
    torch.manual_seed(0)
    detached = CCLoss(4, 6, feat_dim=8, mode=mode, detach_teacher_embed=True)
    s = torch.randn(5, 4, requires_grad=True)
    t = torch.randn(5, 6, requires_grad=True)
    out = detached(s, t)
    # same value, only the gradient path differs
    assert torch.allclose(out, kept(s, t))
    out.backward()
    assert detached.embed_t.weight.grad is None
    assert detached.embed_t.bias.grad is None
    assert detached.embed_s.weight.grad.abs().sum() > 0
    assert t.grad is None


def test_batch_of_one():
    s, t = torch.randn(1, 4), torch.randn(1, 6)
    with pytest.raises(ValueError, match='s_feature has batch size 1'):
        CCLoss(4, 6)(s, t)
    out = CCLoss(4, 6, mode='gaussian_rbf')(s, t)
    assert torch.isfinite(out) and out.item() == pytest.approx(0.0)


@pytest.mark.parametrize('mode', ['repdistiller', 'gaussian_rbf'])
@pytest.mark.parametrize('s,t', [
    (torch.randn(2, 4), torch.randn(2, 6)),
    (torch.zeros(3, 4), torch.zeros(3, 6)),
    (torch.ones(3, 4), torch.ones(3, 6)),
])
def test_degenerate_batches_are_finite(mode, s, t):
    loss = CCLoss(4, 6, feat_dim=8, mode=mode)
    s = s.clone().requires_grad_()
    out = loss(s, t)
    out.backward()
    assert torch.isfinite(out)
    assert torch.isfinite(s.grad).all()


def test_zero_embeddings_are_finite_in_gaussian_rbf():
    loss = CCLoss(4, 6, feat_dim=8, mode='gaussian_rbf')
    for linear in (loss.embed_s, loss.embed_t):
        nn.init.zeros_(linear.weight)
        nn.init.zeros_(linear.bias)
    s = torch.randn(3, 4, requires_grad=True)
    out = loss(s, torch.randn(3, 6))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(s.grad).all()


def test_bad_inputs_raise():
    loss = CCLoss(4, 6)
    with pytest.raises(ValueError, match='s_feature has 5 values'):
        loss(torch.randn(2, 5), torch.randn(2, 6))
    with pytest.raises(ValueError, match='t_feature has 3 values'):
        loss(torch.randn(2, 4), torch.randn(2, 3))
    with pytest.raises(ValueError, match='same batch size'):
        loss(torch.randn(2, 4), torch.randn(3, 6))
    with pytest.raises(ValueError, match='mode'):
        CCLoss(4, 6, mode='rbf')


def test_loss_weight_scales():
    torch.manual_seed(0)
    s, t = torch.randn(4, 4), torch.randn(4, 6)
    torch.manual_seed(1)
    unit = CCLoss(4, 6)
    torch.manual_seed(1)
    weighted = CCLoss(4, 6, loss_weight=0.02)
    assert torch.allclose(weighted(s, t), 0.02 * unit(s, t))


def test_build_from_registry():
    loss = MODELS.build(
        dict(
            type='mmsakd.CCLoss',
            student_channels=64,
            teacher_channels=256,
            detach_teacher_embed=True,
            loss_weight=0.02))
    assert isinstance(loss, CCLoss)
    assert loss.embed_t.in_features == 256 and loss.detach_teacher_embed


def test_min_samples():
    # consecutive-sample pairs need two samples
    assert CCLoss.min_samples == 2


def test_detached_teacher_embed_requires_no_grad():
    loss = CCLoss(4, 6, detach_teacher_embed=True)
    assert not any(p.requires_grad for p in loss.embed_t.parameters())
    assert all(p.requires_grad for p in loss.embed_s.parameters())
    loss.detach_teacher_embed = False
    assert all(p.requires_grad for p in loss.parameters())
    assert all(p.requires_grad for p in CCLoss(4, 6).parameters())


@pytest.mark.parametrize('detach', [True, False])
def test_teacher_embed_over_optimizer_steps(detach):
    """SGD with momentum and weight decay through MMEngine's optimizer
    constructor, over steps that select some, none or all samples at the
    CC spot, or skip the loss: a detached teacher embedding never moves."""
    torch.manual_seed(0)
    model = nn.Module()
    model.student = nn.Linear(5, 4)
    model.loss_cc = CCLoss(
        4, 6, feat_dim=8, detach_teacher_embed=detach, loss_weight=0.02)
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=dict(
                type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4),
            paramwise_cfg=dict(custom_keys={'loss_cc': dict(lr_mult=1.0)})))
    cc = model.loss_cc
    initial = [p.detach().clone() for p in cc.parameters()]
    steps = [
        torch.tensor([1., 0., 1., 1., 0., 0.]),
        torch.zeros(6),
        torch.ones(6),
        None,  # the CC loss is not called in this step
        torch.zeros(6),
        torch.tensor([0., 1., 1., 0., 1., 1.]),
    ]
    for gates in steps:
        before = [p.detach().clone() for p in cc.embed_t.parameters()]
        x, t = torch.randn(6, 5), torch.randn(6, 6)
        s = model.student(x)
        loss = s.pow(2).mean()
        if gates is not None:
            loss = loss + gated_call(model.loss_cc, gates, s, t)
        optim_wrapper.update_params(loss)
        moved = [
            not torch.equal(p, p0)
            for p, p0 in zip(cc.embed_t.parameters(), before)
        ]
        if detach:
            assert not any(moved)
            assert all(p.grad is None for p in cc.embed_t.parameters())
        else:
            # trained: even a step that selects no sample moves it (weight
            # decay and momentum on a zero gradient); a step without the
            # loss leaves it alone
            assert all(moved) == (gates is not None)
    final = list(cc.parameters())
    changed = [not torch.equal(p, p0) for p, p0 in zip(final, initial)]
    # embed_s.weight, embed_s.bias, embed_t.weight, embed_t.bias
    assert changed == [True, True, not detach, not detach]
