"""Gated training steps of the FT and CC losses of the resnet56 -> resnet20
SAKD configs against the step of the authors' code written out by hand
(sakd-reference sections 1.6, 1.7 and 2): the loss on the selected samples
times n / B, SGD with momentum 0.9 and weight decay 5e-4 over the student
and the loss's own trainable modules (FT: the translator, not the
pre-trained paraphraser; CC: both embeddings, the teacher's never getting a
gradient). Losses, gradients and updated weights must agree."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmrazor.models.losses import L2Loss

from mmsakd.registry import MODELS
from tests.helpers import REPO
from tests.test_models.test_losses.utils import gated_call

B = 8
LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4


@pytest.fixture(autouse=True)
def mmsakd_scope():
    # other tests may leave another default scope behind
    with DefaultScope.overwrite_default_scope('mmsakd'):
        yield


def distiller_cfg(name: str) -> Config:
    return Config.fromfile(f'{REPO}/configs/sakd/{name}.py').model.distiller


def optim_wrapper_cfg() -> dict:
    """The recipe's optimizer (the schedule all resnet56 -> resnet20
    configs inherit)."""
    cfg = Config.fromfile(f'{REPO}/configs/baselines/kd_res56_res20.py')
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum,
            optimizer.weight_decay) == ('SGD', LR, MOMENTUM, WEIGHT_DECAY)
    return cfg.optim_wrapper.to_dict()


def reference_sgd(params):
    return torch.optim.SGD(
        params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def our_step(model, optim_wrapper, loss):
    """One MMEngine update; returns the gradients it applied."""
    optim_wrapper.backward(loss)
    grads = {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }
    optim_wrapper.step()
    optim_wrapper.zero_grad()
    return grads


def reference_step(modules, optimizer, loss):
    """One step of the authors' loop (torch 1.6: zero_grad keeps zero
    tensors); returns the gradients it applied."""
    optimizer.zero_grad(set_to_none=False)
    loss.backward()
    grads = {
        n: p.grad.clone()
        for n, p in modules.named_parameters() if p.grad is not None
    }
    optimizer.step()
    return grads


def assert_close(ours, reference):
    assert ours.keys() == reference.keys()
    for name in ours:
        assert torch.allclose(
            ours[name], reference[name], rtol=1e-5, atol=1e-8), name


def params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


# ---------------------------------------------------------------- FT


def repdistiller_factor_transfer(f_s, f_t):
    """FactorTransfer(p1=2, p2=1) of RepDistiller, written with autograd."""

    def factor(f):
        v = f.pow(2).mean(1).view(f.size(0), -1)
        return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)

    return (factor(f_s) - factor(f_t)).abs().mean()


def ft_modules():
    cfg = distiller_cfg('ft_res56_res20')
    connectors = copy.deepcopy(cfg.connectors)
    connectors.t_factor.pop('init_cfg')  # the pre-trained checkpoint
    torch.manual_seed(0)
    model = nn.Module()
    # a stand-in for resnet20 up to layer3: 64 x 8 x 8
    model.student = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1), nn.ReLU())
    model.s_factor = MODELS.build(connectors.s_factor)
    model.t_factor = MODELS.build(connectors.t_factor)
    model.loss_ft = MODELS.build(cfg.distill_losses.loss_ft)
    return model


def test_ft_connectors_are_the_reference_modules():
    """RepDistiller's Paraphraser(t_shape, k=0.5, use_bn=False) and
    Translator(s_shape, t_shape, k=0.5, use_bn=True) for 64 x 8 x 8
    layer3 maps of both networks."""
    model = ft_modules()

    def layout(seq):
        return [(type(m).__name__, m.in_channels, m.out_channels,
                 m.kernel_size, m.stride,
                 m.padding) if isinstance(m, nn.modules.conv._ConvNd) else
                (type(m).__name__, getattr(m, 'negative_slope', None))
                for m in seq
                if not (isinstance(m, nn.Sequential) and len(m) == 0)]

    def block(conv, cin, cout, bn):
        return [
            (conv, cin, cout, (3, 3), (1, 1), (1, 1))
        ] + ([('BatchNorm2d', None)] if bn else []) + [('LeakyReLU', 0.1)]

    encoder = [(64, 64), (64, 32), (32, 32)]  # k = 0.5 of 64 channels
    assert layout(model.s_factor.encoder) == sum(
        (block('Conv2d', i, o, True) for i, o in encoder), [])
    assert layout(model.t_factor.encoder) == sum(
        (block('Conv2d', i, o, False) for i, o in encoder), [])
    assert layout(model.t_factor.decoder) == sum(
        (block('ConvTranspose2d', i, o, False)
         for i, o in [(32, 32), (32, 64), (64, 64)]), [])
    # after pre-training the paraphraser only encodes, and is not trained
    assert type(model.t_factor).__name__ == 'FactorParaphraser'
    assert model.t_factor.phase == 'train'
    assert not any(p.requires_grad for p in model.t_factor.parameters())
    f_t = torch.randn(2, 64, 8, 8, requires_grad=True)
    code = model.t_factor(f_t)
    assert code.shape == (2, 32, 8, 8) and not code.requires_grad
    assert torch.equal(code, model.t_factor.encoder(f_t))
    assert model.s_factor(torch.randn(2, 64, 8, 8)).shape == (2, 32, 8, 8)


def test_ft_pretrain_config_is_the_reference_recipe():
    """helper/pretrain.py: the paraphraser reconstructs the teacher's
    layer3 map, MSE, 30 epochs, SGD lr 0.01 (momentum 0.9, weight decay
    5e-4, no schedule); the FT config loads the last epoch."""
    cfg = Config.fromfile(
        f'{REPO}/configs/baselines/ft_res56_res20_pretrain.py')
    model = cfg.model
    assert not model.student_trainable and not model.calculate_student_loss
    paraphraser = model.distiller.connectors.t_factor
    assert (paraphraser.type, paraphraser.phase, paraphraser.in_channel,
            paraphraser.out_channel) == ('mmsakd.FactorParaphraser',
                                         'pretrain', 64, 32)
    assert not paraphraser.get('use_bn', False)
    assert list(model.distiller.connectors) == ['t_factor']
    mapping = model.distiller.loss_forward_mappings.loss_paraphraser
    assert mapping.s_feature == dict(
        from_student=False, recorder='feat3', connector='t_factor')
    assert mapping.t_feature == dict(from_student=False, recorder='feat3')
    assert model.distiller.teacher_recorders.feat3.source == 'backbone.layer3'
    loss_cfg = copy.deepcopy(model.distiller.distill_losses.loss_paraphraser)
    assert loss_cfg.pop('type') == 'L2Loss'
    rec, target = torch.randn(4, 64, 8, 8), torch.randn(4, 64, 8, 8)
    assert torch.allclose(
        L2Loss(**loss_cfg)(rec, target), F.mse_loss(rec, target))
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum,
            optimizer.weight_decay) == ('SGD', 0.01, 0.9, 5e-4)
    assert cfg.param_scheduler == dict(type='ConstantLR', factor=1.0)
    assert cfg.train_cfg.max_epochs == 30
    assert cfg.train_dataloader.batch_size == 64
    # the student has parameters that get no gradient under DDP
    assert cfg.find_unused_parameters
    ft = distiller_cfg('ft_res56_res20').connectors.t_factor
    assert ft.init_cfg.checkpoint.endswith(
        'ft_res56_res20_pretrain/epoch_30.pth')
    assert ft.init_cfg.prefix == 'distiller.connectors.t_factor.'
    assert (ft.in_channel, ft.out_channel) == (64, 32)


def test_ft_gated_steps_match_the_reference_steps():
    model = ft_modules()
    loss_ft = model.loss_ft
    assert type(loss_ft).__name__ == 'FactorTransferLoss'
    beta = loss_ft.loss_weight
    assert beta == 200.0
    reference = copy.deepcopy(model)
    paraphraser = params(model.t_factor)
    optim_wrapper = build_optim_wrapper(model, optim_wrapper_cfg())
    # the authors' student optimizer: student and translator
    ref_trainable = nn.ModuleDict(
        dict(student=reference.student, s_factor=reference.s_factor))
    ref_optimizer = reference_sgd(ref_trainable.parameters())
    g = torch.Generator().manual_seed(1)
    for gates in (torch.tensor([1., 0., 1., 1., 0., 0., 1., 0.]),
                  torch.tensor([0., 1., 1., 0., 1., 1., 0.,
                                1.]), torch.ones(B)):
        x = torch.randn(B, 3, 8, 8, generator=g)
        f_t = torch.randn(B, 64, 8, 8, generator=g).relu()

        ours = gated_call(model.loss_ft,
                          gates, model.s_factor(model.student(x)),
                          model.t_factor(f_t))
        our_grads = our_step(model, optim_wrapper, ours)

        sel = gates > 0.5
        factor_s = reference.s_factor(reference.student(x))
        factor_t = reference.t_factor.encoder(f_t)  # is_factor=True
        ref = beta * repdistiller_factor_transfer(
            factor_s[sel], factor_t[sel].detach()) * int(sel.sum()) / B
        ref_grads = reference_step(ref_trainable, ref_optimizer, ref)

        assert torch.allclose(ours, ref, rtol=1e-6)
        assert_close(our_grads, ref_grads)
        assert_close(params(model.student), params(reference.student))
        assert_close(params(model.s_factor), params(reference.s_factor))
        # the paraphraser stays as pre-trained
        assert_close(params(model.t_factor), paraphraser)


# ---------------------------------------------------------------- CC


def cc_modules():
    cfg = distiller_cfg('cc_res56_res20')
    torch.manual_seed(0)
    model = nn.Module()
    # a stand-in for resnet20 up to the pooled 64-d vector
    model.student = nn.Linear(10, 64)
    model.loss_cc = MODELS.build(cfg.distill_losses.loss_cc)
    return model


def repdistiller_cc(e_s, e_t):
    """RepDistiller's Correlation: consecutive samples of |e_s - e_t|."""
    delta = (e_s - e_t).abs()
    return (delta[:-1] * delta[1:]).sum(1).mean()


def test_cc_gated_steps_match_the_reference_steps():
    """Several steps, one of them selecting no sample at the CC spot: the
    reference then adds no CC loss, its teacher embedding never has a
    gradient and never moves; its student embedding keeps the zero
    gradient torch 1.6 leaves, so weight decay and momentum still move it,
    as they do here."""
    model = cc_modules()
    loss_cc = model.loss_cc
    assert loss_cc.detach_teacher_embed
    beta = loss_cc.loss_weight
    assert beta == 0.02
    reference = copy.deepcopy(model)
    ref_cc = reference.loss_cc
    embed_t = params(loss_cc.embed_t)
    optim_wrapper = build_optim_wrapper(model, optim_wrapper_cfg())
    # the authors' student optimizer: student, cc_embed_s and cc_embed_t
    ref_trainable = nn.ModuleDict(
        dict(
            student=reference.student,
            embed_s=ref_cc.embed_s,
            embed_t=ref_cc.embed_t))
    ref_optimizer = reference_sgd(ref_trainable.parameters())
    g = torch.Generator().manual_seed(1)
    for gates in (torch.tensor([1., 0., 1., 1., 0., 0., 1.,
                                0.]), torch.zeros(B),
                  torch.tensor([0., 1., 1., 0., 1., 1., 0.,
                                1.]), torch.zeros(B), torch.ones(B)):
        x = torch.randn(B, 10, generator=g)
        f_t = torch.randn(B, 64, generator=g)

        s = model.student(x)
        ours = s.pow(2).mean() + gated_call(model.loss_cc, gates, s, f_t)
        our_grads = our_step(model, optim_wrapper, ours)

        sel = gates > 0.5
        s_ref = reference.student(x)
        ref = s_ref.pow(2).mean()
        if sel.any():
            e_s = ref_cc.embed_s(s_ref[sel])
            e_t = ref_cc.embed_t(f_t[sel]).detach()
            ref = ref + beta * repdistiller_cc(e_s, e_t) * int(sel.sum()) / B
        ref_grads = reference_step(ref_trainable, ref_optimizer, ref)

        assert torch.allclose(ours, ref, rtol=1e-6)
        assert_close(
            our_grads, {
                n.replace('embed_s.', 'loss_cc.embed_s.'): g_
                for n, g_ in ref_grads.items()
            })
        assert_close(params(model.student), params(reference.student))
        assert_close(params(loss_cc), params(ref_cc))
        assert_close(params(loss_cc.embed_t), embed_t)
