import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from mmsakd.models.losses import CRDLoss
from mmsakd.registry import MODELS

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
