"""The SAKD algorithm's contract (sakd-reference sections 1 and 6): spot
inference, gating, who trains on which loss, and the one-optimizer step
being the authors' two-optimizer step."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmsakd.models.sakd.executor import SegmentExecutor
from mmsakd.models.sakd.teacher_reuse import TeacherPass
from mmsakd.registry import MODELS


def classifier(depth, num_classes=10):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(type='mmsakd.CIFARResNet', depth=depth),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=num_classes,
            in_channels=64,
            loss=dict(type='mmpretrain.CrossEntropyLoss')))


def rec(source):
    return dict(type='ModuleOutputs', source=source)


def pair(name, s_key='s_feature', t_key='t_feature', **extra):
    return {
        s_key: dict(from_student=True, recorder=name, **extra),
        t_key: dict(from_student=False, recorder=name, **extra)
    }


KD = dict(
    student_recorders=dict(logits=rec('head.fc')),
    teacher_recorders=dict(logits=rec('head.fc')),
    distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=4)),
    loss_forward_mappings=dict(loss_kd=pair('logits', 'preds_S', 'preds_T')))


def with_kd(**parts):
    """A ConfigurableDistiller config: KD plus the given parts."""
    cfg = copy.deepcopy(KD)
    for key, value in parts.items():
        cfg.setdefault(key, {}).update(value)
    return dict(type='ConfigurableDistiller', **cfg)


AT = with_kd(
    student_recorders={f'f{i}': rec(f'backbone.layer{i}')
                       for i in (1, 2, 3)},
    teacher_recorders={f'f{i}': rec(f'backbone.layer{i}')
                       for i in (1, 2, 3)},
    distill_losses={
        f'loss_at{i}': dict(type='ATLoss', loss_weight=1000.0)
        for i in (1, 2, 3)
    },
    loss_forward_mappings={f'loss_at{i}': pair(f'f{i}')
                           for i in (1, 2, 3)})


def build(distiller=AT, **sakd):
    with DefaultScope.overwrite_default_scope('mmsakd'):
        model = MODELS.build(
            dict(
                type='mmsakd.SpotAdaptiveDistill',
                architecture=classifier(8),
                teacher=classifier(14),
                distiller=distiller,
                data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
                sakd=sakd))
    model.init_weights()
    return model


def baseline(distiller):
    """MMRazor's own ``SingleTeacherDistill`` on the same pair."""
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(
            dict(
                type='mmrazor.SingleTeacherDistill',
                architecture=classifier(8),
                teacher=classifier(14),
                distiller=copy.deepcopy(distiller),
                data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor')))


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    labels = torch.randint(0, 10, (n, ), generator=g)
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    return x, samples


def test_spots_are_inferred_in_execution_order():
    model = build()
    table = model.distiller.spot_table
    assert list(table.names) == [(f'backbone.layer{i}', f'backbone.layer{i}')
                                 for i in (1, 2, 3)]
    assert model.spot_names == [
        'backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'logits'
    ]
    assert table.decisions['loss_kd'] == 3
    assert table.decisions['loss_at2'] == 1
    assert model.sakd_policy.fc.out_features == 2 * 4
    assert model.sakd_policy.fc.in_features == 64 + 64
    # every inherited loss is the config's own module, gated by the
    # distiller in the default mode
    loss = model.distiller.distill_losses['loss_at1']
    assert type(loss).__name__ == 'ATLoss'
    assert loss.loss_weight == 1000.0
    assert model.distiller.loss_modes == dict.fromkeys(
        ['loss_kd', 'loss_at1', 'loss_at2', 'loss_at3'], 'subset')


def _split_losses(losses):
    student = sum(v for k, v in losses.items()
                  if k.startswith(('student.', 'distill.')) and 'loss' in k)
    return student, losses['sakd.loss_route']


def _grads(model):
    return {
        n: None if p.grad is None else p.grad.clone()
        for n, p in model.named_parameters()
    }


def test_each_loss_trains_only_its_side():
    model = build()
    x, samples = batch()
    state = copy.deepcopy(model.state_dict())

    def run(pick):
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        losses = model.loss(x, samples)
        pick(losses).backward()
        return _grads(model), losses

    both, losses = run(lambda out: sum(_split_losses(out)))
    student_only, _ = run(lambda out: _split_losses(out)[0])
    route_only, _ = run(lambda out: _split_losses(out)[1])

    gates = torch.stack([losses[f'sakd.rate.{n}'] for n in model.spot_names])
    assert ((gates >= 0) & (gates <= 1)).all()
    for name, grad in both.items():
        if name.startswith('teacher.'):
            assert grad is None, name
        elif name.startswith(('sakd_policy.', 'sakd_routing.')):
            # the routing loss alone trains the policy and the adapters
            assert student_only[name] is None, name
            assert torch.equal(grad, route_only[name]), name
        elif name.startswith('architecture.'):
            # the student learns from its own loss alone
            assert route_only[name] is None, name
            assert torch.equal(grad, student_only[name]), name
    assert any(g is not None for n, g in both.items()
               if n.startswith('sakd_policy.'))
    assert all(both[n] is not None for n in both
               if n.startswith('sakd_routing.'))


def test_gated_losses_follow_the_gates(monkeypatch):
    model = build()
    x, samples = batch()
    forced = torch.tensor(
        [[1, 0, 1, 1]] * 3 + [[0, 0, 1, 0]] * 3, dtype=torch.float)
    monkeypatch.setattr(model.sakd_policy, 'forward', lambda t, s:
                        (forced, None))
    losses = model.loss(x, samples)
    assert losses['distill.loss_at2'] == 0
    assert losses['sakd.rate.backbone.layer1'] == 0.5
    # layer3: every sample selected, so the ungated AT loss
    at3 = model.distiller.distill_losses['loss_at3']
    s = model.distiller.get_record('f3', True)
    t = model.distiller.get_record('f3', False)
    assert torch.allclose(losses['distill.loss_at3'], at3(s, t))
    # the hinge: 3 of 6 samples pick the teacher at the logits -> 0
    assert losses['sakd.hinge'] == 0


def test_one_optimizer_step_equals_the_two_optimizer_reference(monkeypatch):
    model = build(gamma=2.0)
    x, samples = batch(8)
    reference = copy.deepcopy(model)
    initial = copy.deepcopy(dict(model.named_parameters()))
    lr, momentum, wd = 0.05, 0.9, 5e-4

    # ours: one MMEngine optimizer, the agent's lr/decay by paramwise_cfg
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(
                type='SGD', lr=lr, momentum=momentum, weight_decay=wd),
            paramwise_cfg=dict(
                custom_keys={'sakd_': dict(lr_mult=0.5, decay_mult=2.0)})))
    torch.manual_seed(11)
    losses = model.loss(x, samples)
    wrapper.update_params(sum(v for k, v in losses.items() if 'loss' in k))

    # the authors' step: routing pass NOT detached (its student gradients
    # are computed, then thrown away), policy/adapters stepped first by
    # their own SGD (lr / 2, wd 1e-3), then the student by its loss
    run = SegmentExecutor.run
    monkeypatch.setattr(
        SegmentExecutor,
        'run',
        lambda self, x, start=None, end=None, detach_params=False: run(
            self, x, start, end, detach_params=False))
    agent_params = [
        p for n, p in reference.named_parameters()
        if n.startswith(('sakd_policy.', 'sakd_routing.'))
    ]
    student_params = [
        p for n, p in reference.named_parameters()
        if not n.startswith(('sakd_policy.',
                             'sakd_routing.')) and p.requires_grad
    ]
    agent_opt = torch.optim.SGD(
        agent_params, lr=lr / 2, momentum=momentum, weight_decay=1e-3)
    student_opt = torch.optim.SGD(
        student_params, lr=lr, momentum=momentum, weight_decay=wd)
    torch.manual_seed(11)
    ref_losses = reference.loss(x, samples)
    student_loss, policy_loss = _split_losses(ref_losses)
    agent_opt.zero_grad()
    policy_loss.backward(retain_graph=True)
    assert any(p.grad is not None for p in student_params)  # not detached
    agent_opt.step()
    student_opt.zero_grad()
    student_loss.backward()
    student_opt.step()

    assert torch.equal(ref_losses['sakd.loss_route'],
                       losses['sakd.loss_route'].detach())
    ours = dict(model.named_parameters())
    for name, param in reference.named_parameters():
        assert torch.allclose(ours[name], param, atol=1e-7, rtol=0), name
    # the step moved the policy, the adapters and the student
    for prefix in ('sakd_policy.', 'sakd_routing.', 'architecture.'):
        moved = [
            n for n, p in model.named_parameters()
            if n.startswith(prefix) and not torch.equal(p, initial[n])
        ]
        assert moved, prefix


@pytest.mark.parametrize('gamma, route_vs_student', [(2.0, 'worse'),
                                                     (2.0, 'better')])
def test_gamma_rule(gamma, route_vs_student, monkeypatch):
    model = build(gamma=gamma, hinge=False)
    x, samples = batch()
    torch.manual_seed(0)
    losses = model.loss(x, samples)
    ce = losses['sakd.route_ce']
    student_ce = torch.nn.functional.cross_entropy(
        model.distiller.get_student_logits(),
        torch.cat([s.gt_label for s in samples]))
    factor = gamma if ce > student_ce else 1 / gamma
    assert torch.allclose(losses['sakd.loss_route'], factor * ce)
    assert losses['sakd.hinge'] == 0


@pytest.mark.parametrize(
    'sakd, match',
    [
        (dict(warmup=3), 'unknown key'),
        (dict(gamma=0), 'model.sakd.gamma'),
        (dict(loss_mode='soft'), 'loss_mode'),
        (dict(pool_source='backbone.layer9'), 'pool_source'),
        (dict(loss_mode=dict(loss_x='mask')), 'loss_x.*not in distill_losses'),
        (dict(loss_mode=dict(loss_at1='soft')), r"loss_mode\['loss_at1'\]"),
        # retired settings are unknown keys, not silently ignored
        (dict(channels_last=True), 'unknown key.*channels_last'),
        (dict(fold_teacher_bn=True), 'unknown key.*fold_teacher_bn'),
        (dict(reuse_teacher_pass='no'), 'model.sakd.reuse_teacher_pass'),
    ])
def test_bad_sakd_settings(sakd, match):
    with pytest.raises(ValueError, match=match):
        build(**sakd)


def test_a_record_inside_a_stage_takes_the_stages_spot():
    # the first ReLU call of layer2's block: inside the unit that ends at
    # backbone.layer2; the loss reads that tensor, the gates are layer2's
    inner = with_kd(
        student_recorders=dict(f=rec('backbone.layer2.0.relu')),
        teacher_recorders=dict(f=rec('backbone.layer2')),
        distill_losses=dict(loss_at=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_at=pair('f')))
    model = build(inner)
    assert list(model.distiller.spot_table.names) == [('backbone.layer2',
                                                       'backbone.layer2')]
    model.train()
    losses = model(*batch(), mode='loss')
    assert torch.isfinite(losses['distill.loss_at'])
    first_relu = model.distiller.get_record('f', from_student=True)
    # the block's first ReLU, before conv2 / bn2 and the residual sum
    assert first_relu.shape == (6, 32, 16, 16)
    assert (first_relu >= 0).all()


def test_non_configurable_distiller_is_refused():
    ofd = dict(AT, type='OFDDistiller')
    with pytest.raises(ValueError, match='OFDDistiller'):
        build(ofd)


# distiller configs shaped like MMRazor's own (on the toy CIFAR resnets)
SWAPS = dict(
    kd=with_kd(),
    fitnets=with_kd(
        student_recorders=dict(f2=rec('backbone.layer2')),
        teacher_recorders=dict(f2=rec('backbone.layer2')),
        distill_losses=dict(loss_l2=dict(type='L2Loss', loss_weight=10)),
        connectors=dict(
            s2=dict(
                type='ConvModuleConnector',
                in_channel=32,
                out_channel=32,
                norm_cfg=dict(type='BN'))),
        loss_forward_mappings=dict(
            loss_l2=dict(
                s_feature=dict(
                    from_student=True, recorder='f2', connector='s2'),
                t_feature=dict(from_student=False, recorder='f2')))),
    at=AT,
    rkd=with_kd(
        student_recorders=dict(pool=rec('neck')),
        teacher_recorders=dict(pool=rec('neck')),
        distill_losses=dict(
            loss_d=dict(type='DistanceWiseRKD'),
            loss_a=dict(type='AngleWiseRKD')),
        loss_forward_mappings=dict(
            loss_d=pair('pool', 'preds_S', 'preds_T', data_idx=0),
            loss_a=pair('pool', 'preds_S', 'preds_T', data_idx=0))),
    crd=with_kd(
        student_recorders=dict(
            pool=rec('neck'), inputs=dict(type='ModuleInputs', source='')),
        teacher_recorders=dict(pool=rec('neck')),
        distill_losses=dict(
            loss_crd=dict(
                type='mmsakd.CRDLoss',
                neg_num=4,
                sample_n=16,
                dim_out=16,
                loss_weight=0.8)),
        connectors=dict(
            s=dict(type='CRDConnector', dim_in=64, dim_out=16),
            t=dict(type='CRDConnector', dim_in=64, dim_out=16)),
        loss_forward_mappings=dict(
            loss_crd=dict(
                s_feats=dict(
                    from_student=True,
                    recorder='pool',
                    data_idx=0,
                    connector='s'),
                t_feats=dict(
                    from_student=False,
                    recorder='pool',
                    data_idx=0,
                    connector='t'),
                data_samples=dict(
                    from_student=True, recorder='inputs', data_idx=1)))),
    dkd=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            fc=rec('head.fc'),
            gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
        teacher_recorders=dict(fc=rec('head.fc')),
        distill_losses=dict(
            loss_dkd=dict(type='DKDLoss', tau=1, beta=0.5, reduction='mean')),
        loss_forward_mappings=dict(
            loss_dkd=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc'),
                gt_labels=dict(
                    recorder='gt_labels', from_student=True, data_idx=1)))),
    ab=with_kd(
        student_recorders=dict(f3=rec('backbone.layer3')),
        teacher_recorders=dict(f3=rec('backbone.layer3')),
        distill_losses=dict(loss_ab=dict(type='ABLoss', loss_weight=1.0)),
        connectors=dict(
            s3=dict(
                type='ConvModuleConnector',
                in_channel=64,
                out_channel=64,
                norm_cfg=dict(type='BN'),
                act_cfg=None)),
        loss_forward_mappings=dict(
            loss_ab=dict(
                s_feature=dict(
                    from_student=True, recorder='f3', connector='s3'),
                t_feature=dict(from_student=False, recorder='f3')))),
)
SWAP_SPOTS = dict(
    kd=[],
    fitnets=['backbone.layer2'],
    at=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'],
    rkd=['neck'],
    crd=['neck'],
    dkd=[],
    ab=['backbone.layer3'])


@pytest.mark.parametrize('name', sorted(SWAPS))
def test_any_configurable_distiller_becomes_spot_adaptive(name):
    model = build(SWAPS[name])
    assert [s for s, _ in model.distiller.spot_table.names] == SWAP_SPOTS[name]
    x, samples = batch(8)
    for i, sample in enumerate(samples):  # CRD reads the dataset indices
        sample.set_field(torch.tensor(i), 'sample_idx')
    # with half the samples selected everywhere, every parameter that
    # trains must still get a gradient (DDP needs the same graph on all
    # ranks)
    half = torch.tensor([1., 0.] * 4)[:, None].repeat(
        1, model.distiller.spot_table.num_decisions)
    for gates in (None, half):
        if gates is not None:
            model.sakd_policy.forward = lambda t, s: (gates, None)
        model.zero_grad(set_to_none=True)
        losses = model.loss(x, samples)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        total.backward()
        missing = [
            n for n, p in model.named_parameters() if p.requires_grad
            and p.grad is None and not n.startswith('sakd_policy')
        ]
        assert missing == [], missing


def test_explicit_spot_wise_wrappers_are_refused_naming_loss_mode():
    distiller = with_kd()
    distiller['distill_losses'] = dict(
        loss_kd=dict(
            type='mmsakd.SpotWiseLoss',
            loss=dict(type='KLDivergence', tau=4),
            mode='mask'))
    with pytest.raises(
            ValueError,
            match=r"distill_losses\.loss_kd is a SpotWiseLoss.*"
            r"model\.sakd\.loss_mode=\{'loss_kd': 'mask'\}"):
        build(distiller)


def test_loss_mode_per_loss():
    model = build(loss_mode=dict(loss_kd='mask'))
    assert model.distiller.loss_modes['loss_kd'] == 'mask'
    assert model.distiller.loss_modes['loss_at1'] == 'subset'
    x, samples = batch()
    losses = model.loss(x, samples)
    assert torch.isfinite(losses['distill.loss_kd'])


@pytest.mark.parametrize(
    'gamma, ce, student_ce, reference, exclusive',
    [
        # gamma >= 1: the two rules agree
        (2.0, 3.0, 1.0, 2.0, 2.0),
        (2.0, 0.5, 1.0, 0.5, 0.5),
        (2.0, 1.0, 1.0, 1.0, 1.0),
        # gamma < 1: worse, and still worse once scaled
        (0.5, 3.0, 1.0, 0.5, 0.5),
        # worse, better once scaled: the reference divides it back
        (0.5, 1.5, 1.0, 1.0, 0.5),
        # better
        (0.5, 0.5, 1.0, 2.0, 2.0),
    ])
def test_gamma_rules(gamma, ce, student_ce, reference, exclusive):
    model = build(gamma=gamma)
    ce, student_ce = torch.tensor(ce), torch.tensor(student_ce)
    assert model.gamma_rule == 'reference'
    assert model._gamma_scale(ce, student_ce).item() == reference
    model.gamma_rule = 'exclusive'
    assert model._gamma_scale(ce, student_ce).item() == exclusive


def test_bad_gamma_rule():
    with pytest.raises(ValueError, match='model.sakd.gamma_rule'):
        build(gamma_rule='paper')


def test_routing_reuses_the_frozen_teachers_first_spot(monkeypatch):
    model = build()
    model.train()  # as the Runner does: the frozen teacher's BN in eval mode
    taken = []
    take = TeacherPass.take

    def spy(self, everywhere):
        out = take(self, everywhere)
        taken.append(out[0])
        return out

    monkeypatch.setattr(TeacherPass, 'take', spy)
    calls = []
    model.teacher.backbone.layer1[0].register_forward_hook(
        lambda *args: calls.append(1))
    x, samples = batch()
    model.loss(x, samples)
    # the teacher's pass computes layer1 once; the routing pass takes its
    # output at the first spot (backbone.layer1) from the captured pass
    assert len(calls) == 1
    assert torch.equal(taken[0], model.distiller.get_record('f1', False))
    # a teacher BN layer in train mode would update its statistics again
    model.teacher.backbone.layer2[0].bn1.train()
    calls.clear()
    model.loss(x, samples)
    assert len(calls) == 2
    model.train()
    # a teacher with stochastic layers in train mode is run again
    model.teacher.add_module('drop', torch.nn.Dropout(0.0))
    model.teacher.drop.train()
    calls.clear()
    model.loss(x, samples)
    assert len(calls) == 2


def test_loss_is_single_teacher_distills_when_every_gate_is_one(monkeypatch):
    """The explicit ``loss`` runs MMRazor's passes: with every gate open,
    the student and distill losses, and their gradients, are those of
    ``SingleTeacherDistill.loss`` bit for bit."""
    model = build(SWAPS['fitnets'])
    base = baseline(SWAPS['fitnets'])
    missing, unexpected = base.load_state_dict(
        model.state_dict(), strict=False)
    assert missing == [] and all(
        k.startswith(('sakd_policy.', 'sakd_routing.')) for k in unexpected)
    model.train()
    base.train()
    ones = torch.ones(6, model.distiller.spot_table.num_decisions)
    monkeypatch.setattr(model.sakd_policy, 'forward', lambda t, s:
                        (ones, None))
    x, samples = batch()
    ours, theirs = model.loss(x, samples), base.loss(x, samples)
    assert set(theirs) < set(ours)
    assert {k
            for k in ours if k not in theirs} == {
                'sakd.loss_route', 'sakd.route_ce', 'sakd.hinge',
                'sakd.rate.backbone.layer2', 'sakd.rate.logits'
            }
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key
    for net, losses in ((model, ours), (base, theirs)):
        net.zero_grad(set_to_none=True)
        sum(v for k, v in losses.items()
            if k.startswith(('student.', 'distill.'))).backward()
    grads = dict(base.named_parameters())
    for name, param in model.named_parameters():
        if name.startswith('sakd_'):
            continue
        other = grads[name].grad
        assert (param.grad is None) == (other is None), name
        if other is not None:
            assert torch.equal(param.grad, other), name
    # stopping the distillation leaves the student's loss alone, as MMRazor
    model.distillation_stopped = True
    base.distillation_stopped = True
    stopped = model.loss(x, samples)
    assert sorted(stopped) == sorted(base.loss(x, samples))
    assert all(k.startswith('student.') for k in stopped)


USER_MODULE = '''
import torch
from torch import nn

from mmsakd.registry import MODELS


@MODELS.register_module()
class UserPolicy(nn.Module):
    """A policy of its own: a different constructor, no tau or init."""

    def __init__(self, num_decisions, in_channels, hidden=8):
        super().__init__()
        self.num_decisions = num_decisions
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(),
            nn.Linear(hidden, num_decisions))

    def forward(self, teacher_pooled, student_pooled):
        logits = self.net(torch.cat([teacher_pooled, student_pooled], 1))
        soft = logits.sigmoid()
        hard = (soft > 0.5).to(soft.dtype)
        return hard + soft - soft.detach(), logits


@MODELS.register_module()
class UserCosineLoss(nn.Module):
    """A loss of its own: MMRazor's interface, per-sample terms."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def per_sample(self, s_feature, t_feature):
        s, t = s_feature.flatten(1), t_feature.flatten(1)
        return self.loss_weight * (
            1 - torch.nn.functional.cosine_similarity(s, t))

    def forward(self, s_feature, t_feature):
        return self.per_sample(s_feature, t_feature).mean()
'''

USER_CONFIG = '''
_base_ = ['{repo}/configs/baselines/kd_res56_res20.py']
custom_imports = dict(imports=['user_sakd'], allow_failed_imports=False)
model = dict(
    type='mmsakd.SpotAdaptiveDistill',
    teacher_ckpt=None,
    distiller=dict(
        student_recorders=dict(f2=dict(type='ModuleOutputs',
                                       source='backbone.layer2')),
        teacher_recorders=dict(f2=dict(type='ModuleOutputs',
                                       source='backbone.layer2')),
        distill_losses=dict(loss_cos=dict(type='UserCosineLoss',
                                          loss_weight=2.0)),
        loss_forward_mappings=dict(loss_cos=dict(
            s_feature=dict(from_student=True, recorder='f2'),
            t_feature=dict(from_student=False, recorder='f2')))),
    sakd=dict(policy=dict(type='UserPolicy', hidden=4),
              loss_mode=dict(loss_cos='mask')))
'''


def test_a_users_policy_and_loss_take_two_files(tmp_path, monkeypatch):
    """As the README says: one Python file that registers them and one
    config that inherits a baseline, imports it and swaps the block."""
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings

    from tests.helpers import REPO
    (tmp_path / 'user_sakd.py').write_text(USER_MODULE)
    (tmp_path / 'user_config.py').write_text(USER_CONFIG.format(repo=REPO))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = Config.fromfile(str(tmp_path / 'user_config.py'))
    import_modules_from_strings(**cfg.custom_imports)
    try:
        with DefaultScope.overwrite_default_scope('mmsakd'):
            model = MODELS.build(cfg.model)
        model.init_weights()
        policy = model.sakd_policy
        assert type(policy).__name__ == 'UserPolicy'
        assert policy.num_decisions == 2  # layer2, the KD logits spot
        assert policy.net[0].in_features == 64 + 64
        assert policy.net[0].out_features == 4
        table = model.distiller.spot_table
        assert table.decisions == dict(loss_kd=1, loss_cos=0)
        model.train()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(4, 3, 32, 32, generator=g)
        samples = [DataSample().set_gt_label(i) for i in range(4)]
        losses = model.loss(x, samples)
        assert torch.isfinite(losses['distill.loss_cos'])
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        assert all(p.grad is not None for p in policy.parameters())
    finally:
        MODELS.module_dict.pop('UserPolicy', None)
        MODELS.module_dict.pop('UserCosineLoss', None)
