import copy
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.structures import BaseDataElement
from mmrazor.models.losses import AngleWiseRKD, ATLoss
from mmrazor.models.losses import CRDLoss as MMRazorCRDLoss
from mmrazor.models.losses import DistanceWiseRKD, FTLoss, KLDivergence, L2Loss

from mmsakd.models.distillers import SpotAdaptiveDistiller
from mmsakd.models.losses import (CCLoss, CRDLoss, FSPLoss, NSTLoss, PKTLoss,
                                  SPLoss, SpotWiseLoss, VIDLoss)
from mmsakd.models.losses.spot_wise_loss import PER_SAMPLE_FORMS

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


# (inner-loss factory, input factory), both arguments positional
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


def test_transparent_without_gates():
    for make, inputs in SUBSET_CASES.values():
        wrapper = SpotWiseLoss(make())
        s, t = inputs()
        assert torch.equal(wrapper(s, t), wrapper.loss(s, t))
        assert torch.equal(wrapper(s, t, gates=None), wrapper.loss(s, t))
    vid = SpotWiseLoss(
        dict(type='mmsakd.VIDLoss', student_channels=4, teacher_channels=6))
    s, t = maps()
    assert torch.equal(vid(s_feature=s, t_feature=t), vid.loss(s, t))


@pytest.mark.parametrize('name', sorted(SUBSET_CASES))
def test_subset_is_scaled_loss_of_selected_rows(name):
    make, inputs = SUBSET_CASES[name]
    wrapper = SpotWiseLoss(make())
    s, t = inputs()
    gated = wrapper(s, t, gates=GATES)
    expected = wrapper.loss(rows(s, SELECTED), rows(t, SELECTED)) * 3 / B
    assert gated.item() != 0
    assert torch.allclose(gated, expected, rtol=1e-6, atol=0)


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
    sp = SpotWiseLoss(SPLoss())
    subset = sp(s, t, gates=GATES)
    assert torch.allclose(sp_rows(s, t).mean(), sp.loss(s, t))
    masked = (GATES * sp_rows(s, t)).sum() / B
    sub_batch = sp_rows(s[SELECTED], t[SELECTED]).mean() * 3 / B
    assert torch.allclose(subset, sub_batch)
    assert not torch.allclose(subset, masked, rtol=1e-2)

    pkt = SpotWiseLoss(PKTLoss())
    subset = pkt(s, t, gates=GATES)
    rows_full = pkt_rows(pkt.loss, s, t)
    assert torch.allclose(rows_full.mean(), pkt.loss(s, t))
    masked = (GATES * rows_full).sum() / B
    assert not torch.allclose(subset, masked, rtol=1e-2)
    with pytest.raises(ValueError, match='SPLoss'):
        SpotWiseLoss(SPLoss(), mode='mask')


def test_rkd_relations_use_only_the_selected_samples():
    s, t = vectors(1)
    wrapper = SpotWiseLoss(DistanceWiseRKD())
    gated = wrapper(s, t, gates=GATES)
    # unselected samples may change freely without changing the loss
    s2, t2 = s.clone(), t.clone()
    s2[1] += 5
    t2[4] -= 3
    assert torch.allclose(wrapper(s2, t2, gates=GATES), gated)
    assert not torch.allclose(wrapper.loss(s2, t2), wrapper.loss(s, t))


def test_fsp_list_arguments_are_selected_element_wise():
    # as many maps as samples: the lists must still be read as stage lists
    s, t = fsp_lists(batch=3)
    assert len(s) == 3
    wrapper = SpotWiseLoss(FSPLoss())
    gates = torch.tensor([0., 1., 1.])
    gated = wrapper(tuple(s), t, gates=gates)
    expected = wrapper.loss(rows(s, [1, 2]), rows(t, [1, 2])) * 2 / 3
    assert torch.allclose(gated, expected)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('name', sorted(MASK_CASES))
def test_mask_equals_subset(name, seed):
    make, inputs = MASK_CASES[name]
    torch.manual_seed(seed)
    inner = make()
    subset = SpotWiseLoss(inner)
    mask = SpotWiseLoss(inner, mode='mask')
    gates = (torch.rand(B) > 0.5).float()
    gates[seed] = 1.
    results = []
    for wrapper in (subset, mask):
        s, t = student_grad(inputs(seed))
        inner.zero_grad()
        value = wrapper(s, t, gates=gates)
        value.backward()
        param_grads = [p.grad.clone() for p in inner.parameters()]
        results.append((value, grads_of(s), param_grads))
    (v_sub, g_sub, p_sub), (v_mask, g_mask, p_mask) = results
    assert v_sub.item() != 0
    assert torch.allclose(v_mask, v_sub, rtol=1e-5, atol=1e-7)
    for a, b in zip(g_sub + p_sub, g_mask + p_mask):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    # all ones: the ungated loss; all zeros: zero
    s, t = inputs(seed)
    assert torch.allclose(
        mask(s, t, gates=torch.ones(B)), inner(s, t), rtol=1e-5)
    assert mask(s, t, gates=torch.zeros(B)).item() == 0


def test_mask_table_and_unsupported_types():
    # MMRazor's losses come from the table, mmsakd's carry their own
    assert set(PER_SAMPLE_FORMS) == {KLDivergence, ATLoss, L2Loss, FTLoss}
    for own in (NSTLoss(), VIDLoss(4, 6), FSPLoss()):
        assert SpotWiseLoss(own, mode='mask')._terms == own.per_sample
    unsupported = [
        SPLoss(),
        PKTLoss(),
        DistanceWiseRKD(),
        AngleWiseRKD(),
        CCLoss(8, 8),
        CRDLoss(neg_num=4, sample_n=16, dim_out=8),
    ]
    for loss in unsupported:
        name = type(loss).__name__
        with pytest.raises(ValueError) as info:
            SpotWiseLoss(loss, mode='mask')
        message = str(info.value)
        assert name in message and 'KLDivergence' in message
        assert "mode='subset'" in message
    with pytest.raises(ValueError, match='batchmean'):
        SpotWiseLoss(KLDivergence(reduction='sum'), mode='mask')
    with pytest.raises(ValueError, match='dist=True'):
        SpotWiseLoss(L2Loss(dist=True), mode='mask')
    # subset works for all of them
    for loss in unsupported[:4]:
        assert SpotWiseLoss(loss).mode == 'subset'


@pytest.mark.parametrize('mode', ['subset', 'mask'])
def test_min_samples_in_mask_mode_and_subset(mode):
    wrapper = SpotWiseLoss(KLDivergence(), mode=mode, min_samples=3)
    s, t = logits()
    for gates, nonzero in ((GATES, True), (torch.tensor([1., 1, 0, 0, 0,
                                                         0]), False)):
        assert (wrapper(s, t, gates=gates).item() != 0) is nonzero


def test_all_ones_is_the_ungated_loss():
    cases = [
        (KLDivergence(tau=4), logits()),
        (CCLoss(8, 8), vectors()),
        (VIDLoss(4, 6), maps()),
        (SPLoss(), maps()),
    ]
    for inner, (s, t) in cases:
        wrapper = SpotWiseLoss(inner)
        assert torch.equal(wrapper(s, t, gates=torch.ones(B)), inner(s, t))


@pytest.mark.parametrize('mode', ['subset', 'mask'])
def test_all_zeros_gives_zero_with_defined_gradients(mode):
    cases = [(VIDLoss(4, 6), maps())]
    if mode == 'subset':
        cases += [(CCLoss(8, 8), vectors()), (DistanceWiseRKD(), vectors()),
                  (FSPLoss(), fsp_lists())]
    for inner, inputs in cases:
        wrapper = SpotWiseLoss(inner, mode=mode)
        s, t = student_grad(inputs)
        value = wrapper(s, t, gates=torch.zeros(B))
        assert value.dim() == 0 and value.item() == 0
        value.backward()
        for grad in grads_of(s):
            assert grad is not None and torch.count_nonzero(grad) == 0
        params = list(inner.parameters())
        assert len(params) > 0 or not isinstance(inner, (VIDLoss, CCLoss))
        for p in params:
            assert p.grad is not None and torch.count_nonzero(p.grad) == 0


def test_one_selected_sample_of_pairwise_relations_is_zero_not_nan():
    one = torch.tensor([0., 0., 1., 0., 0., 0.])
    s, t = vectors()
    s.requires_grad_(True)
    for inner in (DistanceWiseRKD(), AngleWiseRKD(), CCLoss(8, 8)):
        wrapper = SpotWiseLoss(inner)
        assert wrapper.min_samples == 2
        value = wrapper(s, t, gates=one)
        assert value.item() == 0
        value.backward()
        assert torch.isfinite(s.grad).all()
    # the reference behaviour that min_samples avoids
    assert torch.isnan(DistanceWiseRKD()(s[2:3], t[2:3]))
    # other losses are computed on a single sample
    for inner in (KLDivergence(), SPLoss(), PKTLoss()):
        assert SpotWiseLoss(inner).min_samples == 1
    kl = SpotWiseLoss(KLDivergence())
    s, t = logits()
    assert torch.allclose(kl(s, t, gates=one), kl.loss(s[2:3], t[2:3]) / B)


def test_min_samples_validation():
    for bad in (0, -1, 1.5, True, '2'):
        with pytest.raises(ValueError, match='min_samples'):
            SpotWiseLoss(KLDivergence(), min_samples=bad)
    assert SpotWiseLoss(DistanceWiseRKD(), min_samples=1).min_samples == 1
    assert SpotWiseLoss(KLDivergence(), min_samples=4).min_samples == 4


@pytest.mark.parametrize('mode', ['subset', 'mask'])
def test_no_gradient_reaches_the_gates(mode):
    policy_logits = torch.randn(B, requires_grad=True)
    hard = (policy_logits > 0).float()
    # straight-through, as the policy produces them
    gates = hard + policy_logits - policy_logits.detach()
    leaf = GATES.clone().requires_grad_(True)
    for g in (gates, leaf):
        wrapper = SpotWiseLoss(VIDLoss(4, 6), mode=mode)
        s, t = student_grad(maps())
        wrapper(s, t, gates=g).backward()
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
    wrapper = SpotWiseLoss(cls(neg_num=4, sample_n=16, dim_out=8))
    reference = copy.deepcopy(wrapper.loss)
    s, t, samples = crd_inputs()
    memory = wrapper.loss.contrast
    before = (memory.memory_v1.clone(), memory.memory_v2.clone())
    gates = torch.tensor([1., 0., 0., 1.])
    value = wrapper(s_feats=s, t_feats=t, data_samples=samples, gates=gates)
    expected = reference(s[[0, 3]], t[[0, 3]], [samples[0], samples[3]])
    assert torch.allclose(value, expected * 2 / 4)
    for old, new in zip(before, (memory.memory_v1, memory.memory_v2)):
        changed = (old != new).any(dim=1).nonzero().flatten().tolist()
        assert changed == [3, 12]
    assert torch.equal(reference.contrast.memory_v1, memory.memory_v1)


class Net(nn.Module):

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Linear(5, 10)

    def forward(self, x):
        return self.head(x)


def distiller_cfg(**mapping):
    return dict(
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head')),
        distill_losses=dict(
            loss_kd=dict(
                type='mmsakd.SpotWiseLoss',
                loss=dict(type='KLDivergence', tau=4),
                mode='subset')),
        loss_forward_mappings=dict(loss_kd=mapping))


def test_distiller_checks_mappings_and_passes_the_gates():
    distiller = SpotAdaptiveDistiller(
        pool_source='head',
        **distiller_cfg(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc')))
    wrapper = distiller.distill_losses['loss_kd']
    assert isinstance(wrapper, SpotWiseLoss)
    assert isinstance(wrapper.loss, KLDivergence) and wrapper.loss.tau == 4

    student, teacher = Net(0), Net(1)
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    distiller.loss_decisions = {'loss_kd': 1}  # as build_spots resolves it
    x = torch.randn(B, 5)
    with distiller.student_recorders, distiller.teacher_recorders:
        z_s = student(x)
        with torch.no_grad():
            z_t = teacher(x)
    ungated = distiller.compute_distill_losses()['loss_kd']
    assert torch.equal(ungated, wrapper.loss(z_s, z_t))
    gates = torch.stack([1 - GATES, GATES], dim=1)
    gated = distiller.compute_distill_losses(gates)['loss_kd']
    expected = wrapper.loss(z_s[SELECTED], z_t[SELECTED]) * 3 / B
    assert torch.allclose(gated, expected)

    # MMRazor's mapping check reads the wrapped loss's signature
    with pytest.raises(AssertionError, match='logits_S'):
        SpotAdaptiveDistiller(
            pool_source='head',
            **distiller_cfg(
                logits_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))


def losses_of_both_kinds():
    torch.manual_seed(0)
    plain = nn.ModuleDict(
        dict(
            loss_vid=VIDLoss(4, 6),
            loss_crd=CRDLoss(neg_num=4, sample_n=16, dim_out=8),
            loss_kd=KLDivergence()))
    wrapped = nn.ModuleDict({
        name: SpotWiseLoss(copy.deepcopy(loss))
        for name, loss in plain.items()
    })
    return plain, wrapped


def test_state_dict_keys_are_the_wrapped_losses():
    plain, wrapped = losses_of_both_kinds()
    keys = list(wrapped.state_dict())
    assert keys == list(plain.state_dict())
    assert {'loss_vid.log_scale', 'loss_crd.contrast.memory_v1'} <= set(keys)
    # a plain distiller's state loads into the wrapped losses and back,
    # strictly (CRD's memory bank included)
    with torch.no_grad():
        for param in plain.parameters():
            param.add_(1.0)
        plain['loss_crd'].contrast.memory_v1.mul_(2)
    wrapped.load_state_dict(plain.state_dict())
    for (key, a), b in zip(plain.state_dict().items(),
                           wrapped.state_dict().values()):
        assert torch.equal(a, b), key
    _, fresh = losses_of_both_kinds()
    plain.load_state_dict(fresh.state_dict())
    assert torch.equal(plain['loss_vid'].log_scale,
                       fresh['loss_vid'].loss.log_scale)
    # the nested keys of older checkpoints still load
    nested = {
        k.replace('.', '.loss.', 1): v
        for k, v in plain.state_dict().items()
    }
    wrapped.load_state_dict(nested)
    assert torch.equal(wrapped['loss_vid'].loss.log_scale,
                       plain['loss_vid'].log_scale)


def test_deepcopy_and_pickle():
    wrapper = SpotWiseLoss(VIDLoss(4, 6), mode='mask')
    s, t = maps()
    original = wrapper(s, t, gates=GATES)
    for clone in (copy.deepcopy(wrapper), pickle.loads(pickle.dumps(wrapper))):
        assert torch.equal(clone(s, t, gates=GATES), original)
        with torch.no_grad():
            clone.loss.log_scale.add_(1.0)
        # the clone's per-sample form is the clone's loss
        assert not torch.allclose(clone(s, t, gates=GATES), original)
        assert torch.equal(wrapper(s, t, gates=GATES), original)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"mode.*'subset', 'mask'.*'soft'"):
        SpotWiseLoss(KLDivergence(), mode='soft')
    with pytest.raises(TypeError, match='loss'):
        SpotWiseLoss(42)
    wrapper = SpotWiseLoss(KLDivergence())
    s, t = logits()
    with pytest.raises(ValueError, match=r'\(6, 1\)'):
        wrapper(s, t, gates=torch.ones(B, 1))
    with pytest.raises(ValueError, match='gates'):
        wrapper(s, t, gates=[1, 0])
    for mode in ('subset', 'mask'):
        wrapper = SpotWiseLoss(KLDivergence(), mode=mode)
        with pytest.raises(ValueError) as info:
            wrapper(s, t, gates=torch.ones(B + 1))
        assert '(6, )' in str(info.value) and '(7,)' in str(info.value)
        assert '(6, 10)' in str(info.value)


def test_bool_gates_and_repr():
    wrapper = SpotWiseLoss(KLDivergence(tau=4))
    s, t = logits()
    as_bool = wrapper(s, t, gates=GATES.bool())
    assert torch.equal(as_bool, wrapper(s, t, gates=GATES))
    assert "mode='subset', min_samples=1" in repr(wrapper)
