"""The two stages of factor transfer: the paraphraser that
``ft_res56_res20_pretrain.py`` trains and checkpoints is the one the FT
configs (baseline and spot-adaptive) start from and keep."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from tests.helpers import REPO
from tests.test_configs.test_baselines import tiny_cifar_config


def paraphraser_state(model):
    connector = model.distiller.connectors['t_factor']
    return {k: v.clone() for k, v in connector.state_dict().items()}


@pytest.mark.slow
def test_ft_trains_with_the_pretrained_paraphraser(fake_cifar100, tmp_path):
    pretrain = tiny_cifar_config(
        f'{REPO}/configs/baselines/ft_res56_res20_pretrain.py', fake_cifar100,
        str(tmp_path / 'pretrain'))
    pretrain.default_hooks.checkpoint.interval = 1
    # a random teacher's eval-mode BN lets layer3 grow without bound;
    # batch statistics keep the reconstruction loss finite
    pretrain.model.teacher_norm_eval = False
    runner = Runner.from_cfg(pretrain)
    before = paraphraser_state(runner.model)
    runner.train()
    trained = paraphraser_state(runner.model)
    assert any(not torch.equal(before[k], trained[k]) for k in before)
    checkpoint = osp.join(str(tmp_path / 'pretrain'), 'epoch_1.pth')
    assert osp.isfile(checkpoint)

    for name in ('baselines', 'sakd'):
        path = f'{REPO}/configs/{name}/ft_res56_res20.py'
        init_cfg = Config.fromfile(path).model.distiller.connectors.t_factor \
            .init_cfg
        init_cfg.checkpoint = checkpoint
        cfg = tiny_cifar_config(path, fake_cifar100, str(tmp_path / name))
        # tiny_cifar_config drops the paraphraser checkpoint; put it back
        cfg.model.distiller.connectors.t_factor.init_cfg = init_cfg
        cfg.model.teacher_norm_eval = False
        runner = Runner.from_cfg(cfg)
        runner.train()
        after = paraphraser_state(runner.model)
        assert all(torch.equal(after[k], trained[k]) for k in trained), name
