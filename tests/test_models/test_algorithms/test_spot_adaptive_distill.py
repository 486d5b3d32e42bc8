"""The SAKD algorithm's contract (sakd-reference sections 1 and 6): spot
inference, gating, who trains on which loss, and the one-optimizer step
being the authors' two-optimizer step."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmsakd.models.sakd import segments
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


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    labels = torch.randint(0, 10, (n, ), generator=g)
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    return x, samples


def test_spots_are_inferred_in_execution_order():
    model = build()
    assert model.distiller.spots == [
        (f'backbone.layer{i}', f'backbone.layer{i}') for i in (1, 2, 3)
    ]
    assert model.spot_names == [
        'backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'logits'
    ]
    assert model.distiller.loss_decisions['loss_kd'] == 3
    assert model.distiller.loss_decisions['loss_at2'] == 1
    assert model.sakd_policy.fc.out_features == 2 * 4
    assert model.sakd_policy.fc.in_features == 64 + 64
    # every inherited loss is wrapped, keeping its settings
    wrapped = model.distiller.distill_losses['loss_at1']
    assert type(wrapped).__name__ == 'SpotWiseLoss'
    assert wrapped.loss.loss_weight == 1000.0


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
    assert torch.allclose(losses['distill.loss_at3'], at3.loss(s, t))
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
    run = segments.SegmentExecutor.run
    monkeypatch.setattr(
        segments.SegmentExecutor,
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


@pytest.mark.parametrize('sakd, match', [
    (dict(warmup=3), 'unknown key'),
    (dict(gamma=0), 'model.sakd.gamma'),
    (dict(loss_mode='soft'), 'loss_mode'),
    (dict(pool_source='backbone.layer9'), 'pool_source'),
    (dict(channels_last='yes'), 'model.sakd.channels_last'),
    (dict(fold_teacher_bn=1), 'model.sakd.fold_teacher_bn'),
    (dict(reuse_teacher_pass='no'), 'model.sakd.reuse_teacher_pass'),
])
def test_bad_sakd_settings(sakd, match):
    with pytest.raises(ValueError, match=match):
        build(**sakd)


def test_spot_inside_a_stage_fails_at_build_naming_it():
    bad = with_kd(
        student_recorders=dict(f=rec('backbone.layer2.0.relu')),
        teacher_recorders=dict(f=rec('backbone.layer2')),
        distill_losses=dict(loss_at=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_at=pair('f')))
    with pytest.raises(ValueError) as e:
        build(bad)
    assert "'loss_at'" in str(e.value)
    assert 'backbone.layer2.0.relu' in str(e.value)


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
    assert [s for s, _ in model.distiller.spots] == SWAP_SPOTS[name]
    x, samples = batch(8)
    for i, sample in enumerate(samples):  # CRD reads the dataset indices
        sample.set_field(torch.tensor(i), 'sample_idx')
    # with half the samples selected everywhere, every parameter that
    # trains must still get a gradient (DDP needs the same graph on all
    # ranks)
    half = torch.tensor([1., 0.] * 4)[:, None].repeat(
        1, model.distiller.num_decisions)
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


def test_explicit_spot_wise_wrappers_are_kept():
    distiller = with_kd()
    distiller['distill_losses'] = dict(
        loss_kd=dict(
            type='mmsakd.SpotWiseLoss',
            loss=dict(type='KLDivergence', tau=4),
            mode='mask'))
    model = build(distiller)
    wrapper = model.distiller.distill_losses['loss_kd']
    assert wrapper.mode == 'mask'
    assert type(wrapper.loss).__name__ == 'KLDivergence'  # not wrapped twice
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


def test_routing_reuses_the_frozen_teachers_first_spot():
    model = build()
    model.train()  # as the Runner does: the frozen teacher's BN in eval mode
    calls = []
    model.teacher.backbone.layer1[0].register_forward_hook(
        lambda *args: calls.append(1))
    x, samples = batch()
    model.loss(x, samples)
    # the teacher's pass computes layer1 once; the routing pass takes its
    # output at the first spot (backbone.layer1) from the recorder
    assert len(calls) == 1
    reused = model.distiller.teacher_spot_feature(0)
    assert torch.equal(reused, model.distiller.get_record('f1', False))
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


@pytest.mark.parametrize('option', ['channels_last', 'fold_teacher_bn'])
def test_speed_options_change_only_the_routing_rounding(option):
    torch.manual_seed(0)
    model = build()
    assert getattr(model.sakd_routing, option) is False  # the default
    state = copy.deepcopy(model.state_dict())
    x, samples = batch()

    def step(on):
        model.load_state_dict(state)
        setattr(model.sakd_routing, option, on)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        losses = model.loss(x, samples)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        return losses, _grads(model)

    losses, grads = step(False)
    losses_cl, grads_cl = step(True)
    assert getattr(build(**{option: True}).sakd_routing, option) is True
    for key, value in losses.items():
        if key.startswith('sakd.'):
            assert torch.allclose(losses_cl[key], value, rtol=1e-5), key
        else:  # the networks' own passes are untouched
            assert torch.equal(losses_cl[key], value), key
    for name, grad in grads.items():
        if name.startswith(('sakd_', 'distiller.')) or grad is None:
            assert (grads_cl[name] is None) == (grad is None), name
            if grad is not None:  # rounding, relative to the largest entry
                assert (grads_cl[name] - grad).abs().max() <= \
                    1e-4 * grad.abs().max() + 1e-6, name
        else:  # the student's gradient does not see the routing pass
            assert torch.equal(grads_cl[name], grad), name
