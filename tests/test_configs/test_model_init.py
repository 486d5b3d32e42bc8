"""The CIFAR zoo configs initialise like the reference models.

Every tensor of the classifier of ``configs/_base_/models/cifar/<name>.py``
(after ``init_weights``, as the runner calls it) is compared with the same
tensor of the reference model (RepDistiller's classes, which SAKD copies,
with their constructors' initialisation) by its distribution: constant
tensors (BN, zeroed biases) exactly, random ones by mean, standard deviation
and kurtosis (which tells a normal from a uniform draw).
"""
import math

import pytest
import torch

from tests.test_models.test_backbones.utils import build_config
from tests.test_tools import repdistiller_reference as reference
from tests.test_tools.test_repdistiller_converter import CONFIG_ARCHS
from tools.model_converters import repdistiller2mmsakd as converter


def kurtosis(t: torch.Tensor) -> float:
    z = (t - t.mean()) / t.std()
    return z.pow(4).mean().item()


def check_same_distribution(key: str, ours: torch.Tensor,
                            ref: torch.Tensor) -> None:
    ours, ref = ours.double().flatten(), ref.double().flatten()
    n = ref.numel()
    if torch.all(ref == ref[0]):
        assert torch.all(ours == ref[0]), (
            f'{key}: the reference is constant {ref[0].item()}, ours has '
            f'mean {ours.mean().item():.4g}, std {ours.std().item():.4g}')
        return
    assert not torch.all(ours == ours[0]), (
        f'{key}: ours is constant {ours[0].item()}, the reference has '
        f'std {ref.std().item():.4g}')
    # sampling error of the std is about std / sqrt(2 n); allow 5 of them
    # (and 2x at least for the smallest tensors, e.g. a 100-class bias)
    ratio = ours.std().item() / ref.std().item()
    tol = max(5 / math.sqrt(2 * n), 0.05)
    assert abs(math.log(ratio)) < min(
        tol, math.log(2)), (f'{key}: std {ours.std().item():.4g}, reference '
                            f'{ref.std().item():.4g} ({n} values)')
    assert abs(ours.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(n), (
        f'{key}: mean {ours.mean().item():.4g}, reference '
        f'{ref.mean().item():.4g}')
    if n >= 2000:  # a uniform draw has kurtosis 1.8, a normal one 3
        assert abs(kurtosis(ours) - kurtosis(ref)) < 0.6, (
            f'{key}: kurtosis {kurtosis(ours):.3g}, reference '
            f'{kurtosis(ref):.3g} (normal 3, uniform 1.8)')


@pytest.mark.parametrize('name', list(CONFIG_ARCHS))
def test_config_model_initialises_like_the_reference(name):
    torch.manual_seed(0)
    model = build_config(name)
    model.init_weights()
    torch.manual_seed(1)
    ref = reference.reference_init(reference.build(CONFIG_ARCHS[name]))
    expected = converter.convert(ref.state_dict(), CONFIG_ARCHS[name])
    params = dict(model.named_parameters())
    assert set(params) <= set(expected)
    for key, value in params.items():
        check_same_distribution(key, value.detach(), expected[key])


def test_the_check_tells_the_default_head_init_apart():
    """MMPretrain's LinearClsHead default, N(0, 0.01), is not PyTorch's."""
    torch.manual_seed(0)
    head = torch.nn.Linear(64, 100)
    normal = torch.empty(100, 64).normal_(0, 0.01)
    with pytest.raises(AssertionError, match='fc.weight: std'):
        check_same_distribution('fc.weight', normal, head.weight.detach())
    with pytest.raises(AssertionError, match='fc.bias: ours is constant'):
        check_same_distribution('fc.bias', torch.zeros(100),
                                head.bias.detach())
    uniform = torch.empty(64, 16, 3, 3).uniform_(-1, 1) * 3**0.5 * 0.1
    gauss = torch.randn(64, 16, 3, 3) * 0.1
    with pytest.raises(AssertionError, match='kurtosis'):
        check_same_distribution('conv.weight', uniform, gauss)
