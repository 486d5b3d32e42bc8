from types import SimpleNamespace

import pytest
from torch import nn

from mmsakd.engine import PolicyTemperatureHook
from mmsakd.models.sakd import SpotPolicyHead


def _runner(epoch=0, max_epochs=5, it=0, max_iters=100):
    model = nn.Module()
    model.sakd_policy = SpotPolicyHead(in_channels=4, num_decisions=2)
    return SimpleNamespace(
        model=model,
        epoch=epoch,
        max_epochs=max_epochs,
        iter=it,
        max_iters=max_iters)


@pytest.mark.parametrize('mode, middle', [('linear', 3.0),
                                          ('exp', 5.0 * 0.2**0.5)])
def test_schedule_by_epoch(mode, middle):
    hook = PolicyTemperatureHook(start=5.0, end=1.0, mode=mode)
    for epoch, expected in ((0, 5.0), (2, middle), (4, 1.0)):
        runner = _runner(epoch=epoch)
        hook.before_train_epoch(runner)
        assert runner.model.sakd_policy.tau == pytest.approx(expected)
        hook.before_train_iter(runner, 0)  # by epoch: iterations ignored
        assert runner.model.sakd_policy.tau == pytest.approx(expected)


def test_schedule_by_iter():
    hook = PolicyTemperatureHook(start=4.0, end=2.0, by_epoch=False)
    runner = _runner(it=50, max_iters=101)
    hook.before_train_iter(runner, 0)
    assert runner.model.sakd_policy.tau == pytest.approx(3.0)


def test_errors():
    with pytest.raises(ValueError, match='mode'):
        PolicyTemperatureHook(mode='cosine')
    with pytest.raises(ValueError, match='> 0'):
        PolicyTemperatureHook(end=0)
    runner = _runner()
    del runner.model.sakd_policy
    with pytest.raises(TypeError, match='SpotAdaptiveDistill'):
        PolicyTemperatureHook().before_train_epoch(runner)
