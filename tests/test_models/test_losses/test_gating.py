import copy
import pickle
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.structures import BaseDataElement
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.losses import AngleWiseRKD, ATLoss
from mmrazor.models.losses import CRDLoss as MMRazorCRDLoss
from mmrazor.models.losses import DistanceWiseRKD, FTLoss, KLDivergence, L2Loss

from mmsakd.models.distillers import SpotAdaptiveDistiller
from mmsakd.models.losses import (CCLoss, CRDLoss, FactorTransferLoss, FSPLoss,
                                  NSTLoss, PKTLoss, SPLoss, VIDLoss)
from mmsakd.models.losses.gating import (SpotGatedLoss, check_mode, gated_loss,
                                         select_rows)
from mmsakd.models.losses.mmrazor_per_sample import (MIN_SAMPLES,
                                                     PER_SAMPLE_FORMS,
                                                     min_samples_of,
                                                     per_sample_form)
from tests.test_models.test_losses.utils import gated_call, loss_kwargs

B = 6
GATES = torch.tensor([1., 0., 1., 1., 0., 0.])
SELECTED = GATES.nonzero(as_tuple=True)[0]


def logits(seed=0, batch=B):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 10,
                        generator=g), torch.randn(batch, 10, generator=g))


def maps(seed=0, batch=B, s_channels=4, t_channels=6, size=4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, s_channels, size, size, generator=g),
            torch.randn(batch, t_channels, size, size, generator=g))


def same_maps(seed=0, batch=B):
    return maps(seed, batch, 4, 4)


def vectors(seed=0, batch=B, dim=8):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, dim,
                        generator=g), torch.randn(batch, dim, generator=g))


def fsp_lists(seed=0, batch=B):
    g = torch.Generator().manual_seed(seed)
    shapes = [(batch, 3, 4, 4), (batch, 4, 4, 4), (batch, 5, 2, 2)]
    return ([torch.randn(s, generator=g)
             for s in shapes], [torch.randn(s, generator=g) for s in shapes])


def rows(value, index):
    if isinstance(value, (list, tuple)):
        return [v[index] for v in value]
    return value[index]


# (loss factory, input factory), both arguments positional
SUBSET_CASES = {
    'kl': (lambda: KLDivergence(tau=4), logits),
    'at': (lambda: ATLoss(loss_weight=2.0), same_maps),
    'l2': (lambda: L2Loss(normalize=True, div_element=True), same_maps),
    'sp': (lambda: SPLoss(loss_weight=3.0), maps),
    'pkt': (lambda: PKTLoss(), vectors),
    'rkd_distance': (lambda: DistanceWiseRKD(), vectors),
    'rkd_angle': (lambda: AngleWiseRKD(), vectors),
    'fsp': (lambda: FSPLoss(), fsp_lists),
    'nst': (lambda: NSTLoss(), maps),
}

# every type of the per-sample table, some with non-default options
MASK_CASES = {
    'kl': (lambda: KLDivergence(tau=4, loss_weight=0.5), logits),
    'kl_maps': (lambda: KLDivergence(tau=2), same_maps),
    'at': (lambda: ATLoss(loss_weight=2.0), same_maps),
    'l2': (lambda: L2Loss(), same_maps),
    'l2_div_mult':
    (lambda: L2Loss(normalize=True, div_element=True, mult=3.0), same_maps),
    'l2_raw': (lambda: L2Loss(normalize=False, div_element=True), same_maps),
    'l2_raw_sum': (lambda: L2Loss(normalize=False), same_maps),
    'ft': (lambda: FTLoss(loss_weight=2.0), same_maps),
    'nst': (lambda: NSTLoss(loss_weight=5.0), maps),
    'vid': (lambda: VIDLoss(4, 6), maps),
    'fsp': (lambda: FSPLoss(), fsp_lists),
}


def student_grad(inputs):
    s, t = inputs
    for tensor in (s if isinstance(s, list) else [s]):
        tensor.requires_grad_(True)
    return s, t


def grads_of(s):
    return [x.grad for x in (s if isinstance(s, list) else [s])]


def test_gated_call_binds_the_forward_parameter_names():
    s, t = logits()
    assert loss_kwargs(KLDivergence(), s, t) == dict(preds_S=s, preds_T=t)
    s, t = maps()
    kwargs = loss_kwargs(VIDLoss(4, 6), s, t_feature=t)
    assert kwargs == dict(s_feature=s, t_feature=t)
    vid = VIDLoss(4, 6)
    assert torch.equal(
        gated_call(vid, GATES, s, t),
        gated_loss(vid, dict(s_feature=s, t_feature=t), GATES))
    assert torch.equal(
        gated_call(vid, GATES, s, t, mode='mask'),
        gated_loss(vid, dict(s_feature=s, t_feature=t), GATES, 'mask'))


@pytest.mark.parametrize('name', sorted(SUBSET_CASES))
def test_subset_is_scaled_loss_of_selected_rows(name):
    make, inputs = SUBSET_CASES[name]
    loss = make()
    s, t = inputs()
    gated = gated_call(loss, GATES, s, t)
    expected = loss(rows(s, SELECTED), rows(t, SELECTED)) * 3 / B
    assert gated.item() != 0
    assert torch.allclose(gated, expected, rtol=1e-6, atol=0)
    # the selection does not depend on the order of the keyword arguments
    kwargs = loss_kwargs(loss, s, t)
    reversed_kwargs = dict(reversed(list(kwargs.items())))
    assert torch.equal(gated_loss(loss, reversed_kwargs, GATES), gated)


def sp_rows(s, t):
    """Per-sample rows of SP: mean of them is the full-batch SP loss."""
    n = s.size(0)
    diff = SPLoss.similarity(t) - SPLoss.similarity(s)
    return diff.pow(2).sum(1) / n


def pkt_rows(loss, s, t):
    p_s = loss.conditional_probabilities(s)
    p_t = loss.conditional_probabilities(t)
    eps = loss.eps
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean(1)


def test_relational_subset_is_not_a_per_sample_mask():
    # the subset relates the selected samples among themselves only; a mask
    # over the full-batch relation rows keeps their relations to the others
    s, t = vectors(3)
    sp = SPLoss()
    subset = gated_call(sp, GATES, s, t)
    assert torch.allclose(sp_rows(s, t).mean(), sp(s, t))
    masked = (GATES * sp_rows(s, t)).sum() / B
    sub_batch = sp_rows(s[SELECTED], t[SELECTED]).mean() * 3 / B
    assert torch.allclose(subset, sub_batch)
    assert not torch.allclose(subset, masked, rtol=1e-2)

    pkt = PKTLoss()
    subset = gated_call(pkt, GATES, s, t)
    rows_full = pkt_rows(pkt, s, t)
    assert torch.allclose(rows_full.mean(), pkt(s, t))
    masked = (GATES * rows_full).sum() / B
    assert not torch.allclose(subset, masked, rtol=1e-2)
    with pytest.raises(ValueError, match='SPLoss'):
        check_mode(SPLoss(), 'mask', 'model.sakd.loss_mode')
    with pytest.raises(ValueError, match='SPLoss'):
        gated_call(SPLoss(), GATES, s, t, mode='mask')


def test_rkd_relations_use_only_the_selected_samples():
    s, t = vectors(1)
    loss = DistanceWiseRKD()
    gated = gated_call(loss, GATES, s, t)
    # unselected samples may change freely without changing the loss
    s2, t2 = s.clone(), t.clone()
    s2[1] += 5
    t2[4] -= 3
    assert torch.allclose(gated_call(loss, GATES, s2, t2), gated)
    assert not torch.allclose(loss(s2, t2), loss(s, t))


def test_fsp_list_arguments_are_selected_element_wise():
    # as many maps as samples: the lists must still be read as stage lists
    s, t = fsp_lists(batch=3)
    assert len(s) == 3
    loss = FSPLoss()
    gates = torch.tensor([0., 1., 1.])
    gated = gated_call(loss, gates, tuple(s), t)
    expected = loss(rows(s, [1, 2]), rows(t, [1, 2])) * 2 / 3
    assert torch.allclose(gated, expected)


def test_select_rows():
    index = torch.tensor([0, 2])
    x = torch.arange(12.).reshape(3, 4)
    assert torch.equal(select_rows(x, 3, index, [0, 2]), x[[0, 2]])
    # tensors of another batch, scalars and non-batched values pass unchanged
    other = torch.randn(5, 2)
    assert select_rows(other, 3, index, [0, 2]) is other
    scalar = torch.tensor(1.)
    assert select_rows(scalar, 3, index, [0, 2]) is scalar
    assert select_rows(0.5, 3, index, [0, 2]) == 0.5
    assert select_rows([], 3, index, [0, 2]) == []
    # a list of B items is selected item-wise, its type kept
    assert select_rows(('a', 'b', 'c'), 3, index, [0, 2]) == ('a', 'c')
    assert select_rows(['a', 'b'], 3, index, [0, 2]) == ['a', 'b']
    # a tuple of batched tensors element-wise
    selected = select_rows((x, x + 1), 3, index, [0, 2])
    assert isinstance(selected, tuple) and len(selected) == 2
    assert torch.equal(selected[1], x[[0, 2]] + 1)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('name', sorted(MASK_CASES))
def test_mask_equals_subset(name, seed):
    make, inputs = MASK_CASES[name]
    torch.manual_seed(seed)
    loss = make()
    check_mode(loss, 'mask', 'model.sakd.loss_mode')
    gates = (torch.rand(B) > 0.5).float()
    gates[seed] = 1.
    results = []
    for mode in ('subset', 'mask'):
        s, t = student_grad(inputs(seed))
        loss.zero_grad()
        value = gated_call(loss, gates, s, t, mode=mode)
        value.backward()
        param_grads = [p.grad.clone() for p in loss.parameters()]
        results.append((value, grads_of(s), param_grads))
    (v_sub, g_sub, p_sub), (v_mask, g_mask, p_mask) = results
    assert v_sub.item() != 0
    assert torch.allclose(v_mask, v_sub, rtol=1e-5, atol=1e-7)
    for a, b in zip(g_sub + p_sub, g_mask + p_mask):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    # the per-sample terms average to the loss
    s, t = inputs(seed)
    terms = per_sample_form(loss)(**loss_kwargs(loss, s, t))
    assert terms.shape == (B, )
    assert torch.allclose(terms.mean(), loss(s, t), rtol=1e-5)
    # all ones: the ungated loss; all zeros: zero
    assert torch.allclose(
        gated_call(loss, torch.ones(B), s, t, mode='mask'),
        loss(s, t),
        rtol=1e-5)
    assert gated_call(loss, torch.zeros(B), s, t, mode='mask').item() == 0


def test_mask_table_and_unsupported_types():
    # MMRazor's losses come from the table, mmsakd's carry their own
    assert set(PER_SAMPLE_FORMS) == {KLDivergence, ATLoss, L2Loss, FTLoss}
    assert MIN_SAMPLES == {DistanceWiseRKD: 2, AngleWiseRKD: 2}
    for own in (NSTLoss(), VIDLoss(4, 6), FSPLoss(), FactorTransferLoss()):
        assert per_sample_form(own) == own.per_sample
        check_mode(own, 'mask', 'model.sakd.loss_mode')
    # exact types only: a subclass may redefine forward
    subclass = type('MyKL', (KLDivergence, ), {})()
    with pytest.raises(ValueError, match='MyKL'):
        per_sample_form(subclass)
    unsupported = [
        SPLoss(),
        PKTLoss(),
        DistanceWiseRKD(),
        AngleWiseRKD(),
        CCLoss(8, 8),
        CRDLoss(neg_num=4, sample_n=16, dim_out=8),
        MMRazorCRDLoss(neg_num=4, sample_n=16, dim_out=8),
    ]
    for loss in unsupported:
        name = type(loss).__name__
        with pytest.raises(ValueError) as info:
            check_mode(loss, 'mask', "model.sakd.loss_mode['loss_x']")
        message = str(info.value)
        assert message.startswith("model.sakd.loss_mode['loss_x']: ")
        assert name in message and 'KLDivergence' in message
        assert "loss_mode='subset'" in message
    with pytest.raises(ValueError, match='batchmean'):
        check_mode(KLDivergence(reduction='sum'), 'mask', 'key')
    with pytest.raises(ValueError, match='dist=True'):
        check_mode(L2Loss(dist=True), 'mask', 'key')
    ft = FTLoss()
    ft.criterion = nn.MSELoss()
    with pytest.raises(ValueError, match='criterion=MSELoss'):
        check_mode(ft, 'mask', 'key')
    # subset works for all of them
    for loss in unsupported:
        check_mode(loss, 'subset', 'key')


@pytest.mark.parametrize('mode', ['subset', 'mask'])
def test_min_samples_in_mask_mode_and_subset(mode):
    # a loss's own min_samples (SpotGatedLoss) is honoured in both modes
    loss = KLDivergence()
    loss.min_samples = 3
    assert min_samples_of(loss) == 3
    s, t = logits()
    three = GATES
    two = torch.tensor([1., 1, 0, 0, 0, 0])
    assert torch.allclose(
        gated_call(loss, three, s, t, mode=mode),
        loss(s[SELECTED], t[SELECTED]) * 3 / B)
    assert gated_call(loss, two, s, t, mode=mode).item() == 0
    del loss.min_samples
    assert gated_call(loss, two, s, t, mode=mode).item() != 0


def test_all_ones_is_the_ungated_loss():
    cases = [(make(), inputs()) for make, inputs in SUBSET_CASES.values()]
    cases += [
        (CCLoss(8, 8), vectors()),
        (VIDLoss(4, 6), maps()),
    ]
    for loss, (s, t) in cases:
        expected = loss(s, t)
        assert torch.equal(gated_call(loss, torch.ones(B), s, t), expected)
        assert torch.equal(
            gated_call(loss, torch.ones(B, dtype=torch.bool), s, t), expected)


@pytest.mark.parametrize('mode', ['subset', 'mask'])
def test_all_zeros_gives_zero_with_defined_gradients(mode):
    cases = [(VIDLoss(4, 6), maps())]
    if mode == 'subset':
        cases += [(CCLoss(8, 8), vectors()), (DistanceWiseRKD(), vectors()),
                  (FSPLoss(), fsp_lists())]
    for loss, inputs in cases:
        s, t = student_grad(inputs)
        value = gated_call(loss, torch.zeros(B), s, t, mode=mode)
        assert value.dim() == 0 and value.item() == 0
        value.backward()
        for grad in grads_of(s):
            assert grad is not None and torch.count_nonzero(grad) == 0
        params = list(loss.parameters())
        assert len(params) > 0 or not isinstance(loss, (VIDLoss, CCLoss))
        for p in params:
            assert p.grad is not None and torch.count_nonzero(p.grad) == 0


def test_one_selected_sample_of_pairwise_relations_is_zero_not_nan():
    one = torch.tensor([0., 0., 1., 0., 0., 0.])
    s, t = vectors()
    s.requires_grad_(True)
    for loss in (DistanceWiseRKD(), AngleWiseRKD(), CCLoss(8, 8)):
        assert min_samples_of(loss) == 2
        value = gated_call(loss, one, s, t)
        assert value.item() == 0
        value.backward()
        assert torch.isfinite(s.grad).all()
        # from two selected samples on the loss is computed
        two = one.clone()
        two[4] = 1.
        value = gated_call(loss, two, s.detach(), t)
        assert torch.isfinite(value)
        assert torch.allclose(value, loss(s[[2, 4]], t[[2, 4]]) * 2 / B)
    # the reference behaviour that min_samples avoids
    assert torch.isnan(DistanceWiseRKD()(s[2:3], t[2:3]))
    # other losses are computed on a single sample
    for loss in (KLDivergence(), SPLoss(), PKTLoss()):
        assert min_samples_of(loss) == 1
    kl = KLDivergence()
    s, t = logits()
    assert torch.allclose(gated_call(kl, one, s, t), kl(s[2:3], t[2:3]) / B)


def test_own_min_samples_overrides_the_table():
    rkd = DistanceWiseRKD()
    rkd.min_samples = 1
    assert min_samples_of(rkd) == 1
    s, t = vectors()
    one = torch.tensor([0., 0., 1., 0., 0., 0.])
    assert torch.isnan(gated_call(rkd, one, s, t))
    kl = KLDivergence()
    kl.min_samples = 4
    assert min_samples_of(kl) == 4


class PairTerms(nn.Module):
    """A user's loss with the SpotGatedLoss members: per-sample squared
    errors, defined from two samples on."""

    min_samples = 2

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.))

    def forward(self, pred, target):
        return self.per_sample(pred, target).mean()

    def per_sample(self, pred, target):
        return self.scale * (pred - target).pow(2).sum(1)


class Plain(nn.Module):

    def forward(self, pred, target):
        return (pred - target).abs().mean()


def test_spot_gated_loss_protocol():
    assert isinstance(PairTerms(), SpotGatedLoss)
    assert not isinstance(Plain(), SpotGatedLoss)
    loss = PairTerms()
    s, t = vectors()
    terms = loss.per_sample(s, t)
    for mode in ('subset', 'mask'):
        assert torch.allclose(
            gated_call(loss, GATES, s, t, mode=mode),
            (GATES * terms).sum() / B)
        one = torch.tensor([0., 0., 1., 0., 0., 0.], requires_grad=True)
        zero = gated_call(loss, one, s, t, mode=mode)
        assert zero.item() == 0
        zero.backward()
        assert loss.scale.grad is not None
        loss.scale.grad = None
    # a loss without them: subset from one sample on, no mask
    plain = Plain()
    one = torch.tensor([0., 0., 1., 0., 0., 0.])
    assert torch.allclose(
        gated_call(plain, one, s, t),
        plain(s[2:3], t[2:3]) / B)
    with pytest.raises(ValueError, match='Plain'):
        check_mode(plain, 'mask', 'model.sakd.loss_mode')


@pytest.mark.parametrize('mode', ['subset', 'mask'])
def test_no_gradient_reaches_the_gates(mode):
    policy_logits = torch.randn(B, requires_grad=True)
    hard = (policy_logits > 0).float()
    # straight-through, as the policy produces them
    gates = hard + policy_logits - policy_logits.detach()
    leaf = GATES.clone().requires_grad_(True)
    for g in (gates, leaf):
        s, t = student_grad(maps())
        gated_call(VIDLoss(4, 6), g, s, t, mode=mode).backward()
        assert s.grad is not None
    assert policy_logits.grad is None
    assert leaf.grad is None


def crd_inputs(batch=4):
    g = torch.Generator().manual_seed(0)
    s = nn.functional.normalize(torch.randn(batch, 8, generator=g), dim=1)
    t = nn.functional.normalize(torch.randn(batch, 8, generator=g), dim=1)
    samples = []
    for i, idx in enumerate([3, 7, 9, 12][:batch]):
        negatives = torch.randint(16, (4, ), generator=g)
        samples.append(
            BaseDataElement(
                sample_idx=torch.tensor(idx),
                contrast_sample_idxs=torch.cat(
                    [torch.tensor([idx]), negatives])))
    return s, t, samples


@pytest.mark.parametrize('cls', [MMRazorCRDLoss, CRDLoss])
def test_crd_memory_of_unselected_samples_is_untouched(cls):
    torch.manual_seed(0)
    loss = cls(neg_num=4, sample_n=16, dim_out=8)
    reference = copy.deepcopy(loss)
    s, t, samples = crd_inputs()
    memory = loss.contrast
    before = (memory.memory_v1.clone(), memory.memory_v2.clone())
    gates = torch.tensor([1., 0., 0., 1.])
    value = gated_loss(loss, dict(s_feats=s, t_feats=t, data_samples=samples),
                       gates)
    expected = reference(s[[0, 3]], t[[0, 3]], [samples[0], samples[3]])
    assert torch.allclose(value, expected * 2 / 4)
    for old, new in zip(before, (memory.memory_v1, memory.memory_v2)):
        changed = (old != new).any(dim=1).nonzero().flatten().tolist()
        assert changed == [3, 12]
    assert torch.equal(reference.contrast.memory_v1, memory.memory_v1)


def test_deepcopy_and_pickle():
    loss = VIDLoss(4, 6)
    s, t = maps()
    original = gated_call(loss, GATES, s, t, mode='mask')
    for clone in (copy.deepcopy(loss), pickle.loads(pickle.dumps(loss))):
        assert torch.equal(
            gated_call(clone, GATES, s, t, mode='mask'), original)
        with torch.no_grad():
            clone.log_scale.add_(1.0)
        # the clone's per-sample form is the clone's loss
        assert not torch.allclose(
            gated_call(clone, GATES, s, t, mode='mask'), original)
        assert torch.equal(
            gated_call(loss, GATES, s, t, mode='mask'), original)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"mode.*'subset', 'mask'.*'soft'"):
        check_mode(KLDivergence(), 'soft', 'model.sakd.loss_mode')
    with pytest.raises(ValueError, match=r"^model\.sakd\.loss_mode must"):
        check_mode(KLDivergence(), 'soft', 'model.sakd.loss_mode')
    loss = KLDivergence()
    s, t = logits()
    with pytest.raises(ValueError, match=r"mode.*'subset', 'mask'.*'soft'"):
        gated_call(loss, GATES, s, t, mode='soft')
    with pytest.raises(ValueError, match=r'\(6, 1\)'):
        gated_call(loss, torch.ones(B, 1), s, t)
    with pytest.raises(ValueError, match='gates'):
        gated_call(loss, [1, 0], s, t)
    for mode in ('subset', 'mask'):
        for gates in (torch.ones(B + 1), GATES[:-1]):
            with pytest.raises(ValueError) as info:
                gated_call(loss, gates, s, t, mode=mode)
            message = str(info.value)
            assert '(6, )' in message, message
            assert f'({len(gates)},)' in message
            assert '(6, 10)' in message
    with pytest.raises(ValueError, match='batched tensor'):
        gated_loss(Plain(), dict(pred=1.0, target=2.0), GATES)


def test_bool_gates():
    loss = KLDivergence(tau=4)
    s, t = logits()
    for mode in ('subset', 'mask'):
        as_bool = gated_call(loss, GATES.bool(), s, t, mode=mode)
        assert torch.allclose(as_bool, gated_call(loss, GATES, s, t))
    # a gate counts when above 0.5
    soft = torch.tensor([0.9, 0.5, 0.6, 1., 0.1, 0.])
    assert torch.equal(
        gated_call(loss, soft, s, t), gated_call(loss, GATES, s, t))


# ------------------------------------------------------------- distiller


class Net(nn.Module):

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Linear(5, 10)

    def forward(self, x):
        return self.head(x)


KD_MAPPING = dict(
    preds_S=dict(from_student=True, recorder='fc'),
    preds_T=dict(from_student=False, recorder='fc'))


def distiller_cfg(loss=None, **mapping):
    return dict(
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head')),
        distill_losses=dict(loss_kd=loss or dict(type='KLDivergence', tau=4)),
        loss_forward_mappings=dict(loss_kd=mapping or KD_MAPPING))


def prepared(distiller):
    """The distiller with its recorders on two small nets, the spot table
    reduced to what the loss loop reads (the gate column of the loss)."""
    student, teacher = Net(0), Net(1)
    distiller.student_recorders.initialize(student)
    distiller.teacher_recorders.initialize(teacher)
    distiller.spot_table = SimpleNamespace(decisions={'loss_kd': 1})
    return student, teacher


@pytest.mark.parametrize('loss_mode', ['subset', 'mask', {'loss_kd': 'mask'}])
def test_distiller_checks_mappings_and_passes_the_gates(loss_mode):
    distiller = SpotAdaptiveDistiller(
        pool_source='head', loss_mode=loss_mode, **distiller_cfg())
    loss = distiller.distill_losses['loss_kd']
    # the config's own loss, not a wrapper
    assert type(loss) is KLDivergence and loss.tau == 4
    mode = loss_mode if isinstance(loss_mode, str) else loss_mode['loss_kd']
    assert distiller.loss_modes == {'loss_kd': mode}

    student, teacher = prepared(distiller)
    x = torch.randn(B, 5)
    with distiller.student_recorders, distiller.teacher_recorders:
        z_s = student(x)
        with torch.no_grad():
            z_t = teacher(x)
    ungated = distiller.compute_distill_losses()['loss_kd']
    assert torch.equal(ungated, loss(z_s, z_t))
    # column 1 is the loss's spot; column 0 would select the others
    gates = torch.stack([1 - GATES, GATES], dim=1)
    gated = distiller.compute_distill_losses(gates)['loss_kd']
    expected = loss(z_s[SELECTED], z_t[SELECTED]) * 3 / B
    assert torch.allclose(gated, expected, rtol=1e-5)
    gated.backward()
    assert student.head.weight.grad is not None

    # MMRazor's mapping check reads the loss's signature
    with pytest.raises(AssertionError, match='logits_S'):
        SpotAdaptiveDistiller(
            pool_source='head',
            **distiller_cfg(
                logits_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))


def test_distiller_checks_the_loss_modes():
    sp = dict(type='mmsakd.SPLoss')
    with pytest.raises(ValueError) as info:
        SpotAdaptiveDistiller(
            pool_source='head',
            loss_mode=dict(loss_kd='mask'),
            **distiller_cfg(
                sp,
                s_feature=dict(from_student=True, recorder='fc'),
                t_feature=dict(from_student=False, recorder='fc')))
    message = str(info.value)
    assert message.startswith("model.sakd.loss_mode['loss_kd']: ")
    assert 'SPLoss' in message
    with pytest.raises(
            ValueError, match=r"^model\.sakd\.loss_mode must.*"
            r"'soft'"):
        SpotAdaptiveDistiller(
            pool_source='head', loss_mode='soft', **distiller_cfg())
    with pytest.raises(ValueError, match=r"\['loss_xx'\]"):
        SpotAdaptiveDistiller(
            pool_source='head',
            loss_mode=dict(loss_xx='mask'),
            **distiller_cfg())


@pytest.mark.parametrize('spot_wise_type',
                         ['SpotWiseLoss', 'mmsakd.SpotWiseLoss'])
@pytest.mark.parametrize('mode', [None, 'subset', 'mask'])
def test_explicit_spot_wise_loss_config_is_refused(spot_wise_type, mode):
    cfg = dict(type=spot_wise_type, loss=dict(type='KLDivergence', tau=4))
    if mode is not None:
        cfg['mode'] = mode
    expected = mode or 'subset'
    with pytest.raises(ValueError) as info:
        SpotAdaptiveDistiller(pool_source='head', **distiller_cfg(cfg))
    message = str(info.value)
    assert message.startswith('distill_losses.loss_kd is a SpotWiseLoss')
    assert f"model.sakd.loss_mode={{'loss_kd': {expected!r}}}" in message
    # the plain loss is accepted
    SpotAdaptiveDistiller(pool_source='head', **distiller_cfg(cfg['loss']))


def losses_cfg():
    return dict(
        student_recorders=dict(feat=dict(type='ModuleOutputs', source='head')),
        teacher_recorders=dict(feat=dict(type='ModuleOutputs', source='head')),
        distill_losses=dict(
            loss_vid=dict(
                type='mmsakd.VIDLoss',
                student_channels=10,
                teacher_channels=10),
            loss_crd=dict(
                type='mmsakd.CRDLoss', neg_num=4, sample_n=16, dim_out=8),
            loss_kd=dict(type='KLDivergence')),
        loss_forward_mappings=dict(
            loss_vid=dict(
                s_feature=dict(from_student=True, recorder='feat'),
                t_feature=dict(from_student=False, recorder='feat')),
            loss_crd=dict(
                s_feats=dict(from_student=True, recorder='feat'),
                t_feats=dict(from_student=False, recorder='feat')),
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='feat'),
                preds_T=dict(from_student=False, recorder='feat'))))


def test_state_dict_keys_are_mmrazors():
    torch.manual_seed(0)
    plain = ConfigurableDistiller(**losses_cfg())
    torch.manual_seed(0)
    sakd = SpotAdaptiveDistiller(pool_source='head', **losses_cfg())
    keys = list(sakd.state_dict())
    assert keys == list(plain.state_dict())
    assert {
        'distill_losses.loss_vid.log_scale',
        'distill_losses.loss_crd.contrast.memory_v1'
    } <= set(keys)
    # a plain distiller's state loads into the spot-adaptive one and back,
    # strictly (CRD's memory bank included)
    with torch.no_grad():
        for param in plain.parameters():
            param.add_(1.0)
        plain.distill_losses['loss_crd'].contrast.memory_v1.mul_(2)
    sakd.load_state_dict(plain.state_dict())
    for (key, a), b in zip(plain.state_dict().items(),
                           sakd.state_dict().values()):
        assert torch.equal(a, b), key
    torch.manual_seed(1)
    fresh = SpotAdaptiveDistiller(pool_source='head', **losses_cfg())
    plain.load_state_dict(fresh.state_dict())
    assert torch.equal(plain.distill_losses['loss_vid'].log_scale,
                       fresh.distill_losses['loss_vid'].log_scale)
    assert not torch.equal(plain.distill_losses['loss_vid'].log_scale,
                           sakd.distill_losses['loss_vid'].log_scale)
