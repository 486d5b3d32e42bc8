"""Every SAKD config (a one-block swap of its baseline) builds and trains 2
iterations on a tiny CIFAR-100 with the real Runner; the spot statistics
hook writes its files."""
import csv
import glob
import json
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from tests.helpers import REPO
from tests.test_configs.test_baselines import NAMES, tiny_cifar_config

SAKD = sorted(
    osp.basename(p)[:-3]
    for p in glob.glob(f'{REPO}/configs/sakd/*_res56_res20.py'))


def test_every_distiller_has_a_sakd_config_that_swaps_only_the_model():
    assert {n.split('_')[0] for n in SAKD} == set(NAMES) - {'kd'}
    for name in SAKD:
        sakd = Config.fromfile(f'{REPO}/configs/sakd/{name}.py')
        base = Config.fromfile(f'{REPO}/configs/baselines/{name}.py')
        differs = {
            k
            for k in set(sakd) | set(base) if sakd.get(k) != base.get(k)
        }
        assert differs == {'model'}, (name, differs)
        assert sakd.model.type == 'mmsakd.SpotAdaptiveDistill'


@pytest.mark.slow
@pytest.mark.parametrize('name', SAKD)
def test_sakd_config_trains_two_iterations(name, fake_cifar100, tmp_path):
    cfg = tiny_cifar_config(f'{REPO}/configs/sakd/{name}.py', fake_cifar100,
                            str(tmp_path))
    for hook in cfg.custom_hooks:
        if hook.type == 'mmsakd.SpotStatisticsHook':
            hook.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    model = runner.model
    scalars = runner.message_hub.log_scalars
    for key in ['train/loss', 'train/sakd.loss_route'] + [
            f'train/distill.{k}' for k in cfg.model.distiller.distill_losses
    ]:
        assert math.isfinite(scalars[key].current()), key
    # the agent's learning rate and weight decay come from paramwise_cfg
    groups = runner.optim_wrapper.optimizer.param_groups
    policy = model.sakd_policy.fc.weight
    (group, ) = [g for g in groups if any(p is policy for p in g['params'])]
    assert group['lr'] == pytest.approx(0.025)
    assert group['weight_decay'] == pytest.approx(1e-3)

    with open(osp.join(str(tmp_path), 'spot_statistics.json')) as f:
        rows = json.load(f)
    assert [r['kind'] for r in rows] == ['window', 'window', 'epoch']
    for row in rows:
        assert set(model.spot_names) <= set(row)
        assert all(0 <= row[s] <= 1 for s in model.spot_names)
    epoch = rows[-1]
    for spot in model.spot_names:  # the epoch is the mean of its windows
        assert epoch[spot] == pytest.approx(
            (rows[0][spot] + rows[1][spot]) / 2)
    with open(osp.join(str(tmp_path), 'spot_statistics.csv')) as f:
        assert len(list(csv.DictReader(f))) == 3
