import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from mmsakd.models.losses import CRDLoss
from mmsakd.registry import MODELS
from tests.test_models.test_losses.utils import gated_call

SMALL = dict(neg_num=4, sample_n=16, dim_out=8)


def mmrazor_crd_cls():
    # mmrazor.models needs mmsakd's compatibility layer, imported above
    from mmrazor.models.losses import CRDLoss as MMRazorCRDLoss
    return MMRazorCRDLoss


def make_batch(batch=4, with_contrast=False):
    generator = torch.Generator().manual_seed(0)
    s = F.normalize(torch.randn(batch, 8, generator=generator), dim=1)
    t = F.normalize(torch.randn(batch, 8, generator=generator), dim=1)
    samples = []
    for i in range(batch):
        sample = BaseDataElement(sample_idx=torch.tensor(i))
        if with_contrast:
            negatives = torch.randint(
                16, (SMALL['neg_num'], ), generator=generator)
            sample.contrast_sample_idxs = torch.cat(
                [torch.tensor([i]), negatives])
        samples.append(sample)
    return s, t, samples


def run(cls, loss_weight, batch=4, requires_grad=False, with_contrast=False):
    """Build and call a CRD loss from the same seeds, so the memory bank
    and the drawn negatives are identical across calls."""
    torch.manual_seed(0)
    loss = cls(loss_weight=loss_weight, **SMALL)
    s, t, samples = make_batch(batch, with_contrast)
    s.requires_grad_(requires_grad)
    torch.manual_seed(1)
    return loss(s, t, samples), s


@pytest.mark.parametrize('with_contrast', [False, True])
def test_loss_weight_is_applied(with_contrast):
    unit, _ = run(CRDLoss, 1.0, with_contrast=with_contrast)
    double, _ = run(CRDLoss, 2.0, with_contrast=with_contrast)
    assert torch.isfinite(unit) and unit.item() > 0
    assert torch.allclose(double, 2 * unit)
    assert unit.dim() == 0


@pytest.mark.parametrize('with_contrast', [False, True])
def test_mmrazor_class_ignores_loss_weight(with_contrast):
    cls = mmrazor_crd_cls()
    unit, _ = run(cls, 1.0, with_contrast=with_contrast)
    double, _ = run(cls, 2.0, with_contrast=with_contrast)
    assert torch.equal(double, unit)


def test_same_value_as_mmrazor_at_weight_one():
    ours, _ = run(CRDLoss, 1.0)
    theirs, _ = run(mmrazor_crd_cls(), 1.0)
    assert issubclass(CRDLoss, mmrazor_crd_cls())
    assert theirs.shape == (1, )
    assert torch.allclose(ours, theirs.reshape(()))


def test_gradient_reaches_student_and_batch_of_one_is_finite():
    out, s = run(CRDLoss, 0.8, requires_grad=True)
    out.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    single, _ = run(CRDLoss, 0.8, batch=1)
    assert torch.isfinite(single)


def test_mmsakd_scope_resolves_to_the_weighted_class():
    from mmrazor.registry import MODELS as MMRAZOR_MODELS
    with DefaultScope.overwrite_default_scope('mmsakd'):
        assert type(MMRAZOR_MODELS.build(dict(type='CRDLoss',
                                              **SMALL))) is CRDLoss
    with DefaultScope.overwrite_default_scope('mmrazor'):
        built = MMRAZOR_MODELS.build(dict(type='CRDLoss', **SMALL))
        assert type(built) is mmrazor_crd_cls()


@pytest.mark.parametrize('type_name', ['mmsakd.CRDLoss', 'CRDLoss'])
def test_build_from_registry(type_name):
    loss = MODELS.build(dict(type=type_name, loss_weight=0.8, **SMALL))
    assert type(loss) is CRDLoss and loss.loss_weight == 0.8


# -- same results as MMRazor's CRDLoss without gathering the negatives ------

BANK = dict(neg_num=32, sample_n=64, dim_out=8)


def crd_batch(step, batch, mode, generator):
    """Unit embeddings, distinct sample indices and contrast indices:
    ``exact`` (the positive is the sample), ``relax`` (another positive)
    or ``drawn`` (none given: the loss draws them)."""
    s = F.normalize(torch.randn(batch, 8, generator=generator), dim=1)
    t = F.normalize(torch.randn(batch, 8, generator=generator), dim=1)
    idx = torch.randperm(BANK['sample_n'], generator=generator)[:batch]
    samples = []
    for i in range(batch):
        sample = BaseDataElement(sample_idx=idx[i])
        if mode != 'drawn':
            positive = idx[i:i + 1] if mode == 'exact' else torch.randint(
                BANK['sample_n'], (1, ), generator=generator)
            negatives = torch.randint(
                BANK['sample_n'], (BANK['neg_num'], ), generator=generator)
            sample.contrast_sample_idxs = torch.cat([positive, negatives])
        samples.append(sample)
    return s, t, samples


def relative_error(ours, theirs):
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def assert_same_state(ours, theirs):
    for key, value in theirs.state_dict().items():
        assert relative_error(ours.state_dict()[key], value) < 1e-5, key


def step_both(ours, theirs, s, t, samples, gates=None, seed=0):
    """One forward + backward of both losses on the same inputs; returns
    (our loss, their loss, our grads, their grads). With ``gates``, ours
    runs through ``gated_loss`` and theirs on the selected rows times
    ``n / B``, as the gate does."""
    results = []
    for loss in (ours, theirs):
        s_in = s.clone().requires_grad_()
        t_in = t.clone().requires_grad_()
        torch.manual_seed(seed)  # the same drawn negatives for both
        if gates is None:
            value = loss(s_in, t_in, samples)
        elif loss is ours:
            value = gated_call(loss, gates, s_in, t_in, samples)
        else:
            keep = gates.nonzero(as_tuple=True)[0]
            value = loss(s_in[keep], t_in[keep],
                         [samples[i] for i in keep.tolist()])
            value = value * (keep.numel() / gates.numel())
        value.sum().backward()
        results.append((value.reshape(()), s_in.grad, t_in.grad))
    return results


@pytest.mark.parametrize('mode', ['exact', 'relax', 'drawn'])
@pytest.mark.parametrize('batch', [1, 5, 16])
def test_values_gradients_and_banks_match_mmrazor(mode, batch):
    torch.manual_seed(3)
    theirs = mmrazor_crd_cls()(**BANK)
    ours = CRDLoss(loss_weight=1.0, **BANK)
    ours.load_state_dict(theirs.state_dict())
    generator = torch.Generator().manual_seed(batch)
    for step in range(3):  # sets Z, then uses the updated banks
        s, t, samples = crd_batch(step, batch, mode, generator)
        (value, gs, gt), (ref, ref_gs, ref_gt) = step_both(
            ours, theirs, s, t, samples, seed=step)
        assert relative_error(value, ref) < 1e-5
        assert relative_error(gs, ref_gs) < 1e-5
        assert relative_error(gt, ref_gt) < 1e-5
        assert_same_state(ours, theirs)
    # the banks did move
    assert not torch.equal(ours.contrast.memory_v1,
                           mmrazor_crd_cls()(**BANK).contrast.memory_v1)


@pytest.mark.parametrize('mode', ['exact', 'drawn'])
def test_matches_mmrazor_on_the_samples_a_gate_selects(mode):
    torch.manual_seed(4)
    theirs = mmrazor_crd_cls()(**BANK)
    ours = CRDLoss(loss_weight=1.0, **BANK)
    ours.load_state_dict(theirs.state_dict())
    generator = torch.Generator().manual_seed(5)
    for step, pattern in enumerate([[1, 1, 1, 1, 1, 1], [0, 1, 0, 0, 1, 1],
                                    [1, 0, 0, 0, 0, 0]]):
        gates = torch.tensor(pattern, dtype=torch.float)
        s, t, samples = crd_batch(step, 6, mode, generator)
        (value, gs, gt), (ref, ref_gs, ref_gt) = step_both(
            ours, theirs, s, t, samples, gates=gates, seed=step)
        assert relative_error(value, ref) < 1e-5
        assert relative_error(gs, ref_gs) < 1e-5
        assert relative_error(gt, ref_gt) < 1e-5
        assert gs[gates == 0].abs().sum() == 0
        assert_same_state(ours, theirs)


def test_state_dict_is_mmrazors():
    theirs = mmrazor_crd_cls()(**BANK)
    ours = CRDLoss(**BANK)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())  # strict
    assert torch.equal(ours.contrast.memory_v2, theirs.contrast.memory_v2)


def test_scores_split_into_blocks_give_the_same_result(monkeypatch):
    from mmsakd.models.losses import crd_loss
    generator = torch.Generator().manual_seed(6)
    s, t, samples = crd_batch(0, 7, 'exact', generator)
    results = []
    for block in (2**24, 3 * BANK['sample_n']):  # one block; blocks of 3
        monkeypatch.setattr(crd_loss, '_SCORE_BLOCK', block)
        torch.manual_seed(7)
        loss = CRDLoss(**BANK)
        s_in = s.clone().requires_grad_()
        value = loss(s_in, t, samples)
        value.backward()
        results.append((value, s_in.grad, loss.contrast.memory_v1))
    for ours, theirs in zip(*results):
        assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def test_missing_sample_idx_names_the_dataset_wrapper():
    s, t, _ = make_batch()
    with pytest.raises(KeyError, match='CRDSampleDataset'):
        CRDLoss(**SMALL)(s, t, [BaseDataElement(label=1)] * 4)


def test_scores_keep_float32_under_autocast():
    generator = torch.Generator().manual_seed(8)
    s, t, samples = crd_batch(0, 6, 'exact', generator)
    values = []
    for cls, autocast in ((CRDLoss, True), (mmrazor_crd_cls(), False)):
        torch.manual_seed(9)
        loss = cls(**BANK)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            values.append(loss(s, t, samples).reshape(()))
    assert values[0].dtype == torch.float32
    assert relative_error(values[0], values[1]) < 1e-5


def test_sample_indices_of_shape_one_are_accepted():
    generator = torch.Generator().manual_seed(10)
    s, t, samples = crd_batch(0, 3, 'exact', generator)
    torch.manual_seed(11)
    expected = CRDLoss(**BANK)(s, t, samples)
    for sample in samples:
        sample.sample_idx = sample.sample_idx.view(1)
    torch.manual_seed(11)
    assert torch.equal(CRDLoss(**BANK)(s, t, samples), expected)


def test_large_banks_match_mmrazor_in_float64():
    """With thousands of negatives MMRazor's float32 log(m Pn / (P + c))
    rounds each near-zero term (about 1e-4 relative error on the sum at
    K=16384); this loss stays at float32 precision of the exact value,
    i.e. MMRazor's formula evaluated in float64."""
    sizes = dict(neg_num=4096, sample_n=8192, dim_out=16)
    torch.manual_seed(12)
    reference = mmrazor_crd_cls()(**sizes)
    ours = CRDLoss(**sizes)
    ours.load_state_dict(reference.state_dict())
    reference.double()
    generator = torch.Generator().manual_seed(13)
    for step in range(2):
        s = F.normalize(torch.randn(8, 16, generator=generator), dim=1)
        t = F.normalize(torch.randn(8, 16, generator=generator), dim=1)
        idx = torch.randperm(sizes['sample_n'], generator=generator)[:8]
        samples = [
            BaseDataElement(
                sample_idx=idx[i],
                contrast_sample_idxs=torch.cat([
                    idx[i:i + 1],
                    torch.randint(
                        sizes['sample_n'], (4096, ), generator=generator)
                ])) for i in range(8)
        ]
        s_in = s.clone().requires_grad_()
        s_ref = s.double().requires_grad_()
        value = ours(s_in, t, samples)
        expected = reference(s_ref, t.double(), samples).reshape(())
        value.backward()
        expected.backward()
        assert relative_error(value.double(), expected) < 1e-6
        assert relative_error(s_in.grad.double(), s_ref.grad) < 1e-5
