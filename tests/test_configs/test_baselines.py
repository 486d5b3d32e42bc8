"""Every baseline distillation config builds and trains 2 iterations on a
tiny CIFAR-100 in the official layout (real Runner, MMRazor distiller and
recorders, mmsakd losses and data)."""
import glob
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from tests.helpers import REPO

BASELINES = sorted(
    osp.basename(p)[:-3]
    for p in glob.glob(f'{REPO}/configs/baselines/*_res56_res20.py'))
NAMES = ('kd', 'fitnet', 'at', 'sp', 'cc', 'vid', 'rkd', 'pkt', 'ft', 'nst',
         'crd')


def test_every_distiller_has_a_baseline():
    assert {n.split('_')[0] for n in BASELINES} == set(NAMES)


def tiny_cifar_config(path: str, data_root: str, work_dir: str) -> Config:
    """The config at ``path`` shrunk to 2 iterations on the tiny data."""
    cfg = Config.fromfile(path)
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.model.teacher_ckpt = None
    for name, n in (('train_dataloader', 32), ('val_dataloader', 16)):
        loader = cfg[name]
        loader.batch_size = 16
        loader.num_workers = 0
        dataset = loader.dataset
        if 'dataset' in dataset:  # a wrapper such as CRD's sampler
            dataset.neg_num = 8
            dataset = dataset.dataset
        dataset.update(
            data_root=data_root,
            download=False,
            verify_checksum=False,
            indices=n)
    cfg.test_dataloader = cfg.val_dataloader
    losses = cfg.model.distiller.distill_losses
    if 'loss_crd' in losses:
        losses.loss_crd.neg_num = 8
    connectors = cfg.model.distiller.get('connectors', {})
    for connector in connectors.values():
        connector.pop('init_cfg', None)  # pre-trained paraphraser
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('name', BASELINES)
def test_baseline_trains_two_iterations(name, fake_cifar100, tmp_path):
    cfg = tiny_cifar_config(f'{REPO}/configs/baselines/{name}.py',
                            fake_cifar100, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    scalars = runner.message_hub.log_scalars
    distill = [k for k in scalars if k.startswith('train/distill.')]
    expected = {
        f'train/distill.{k}'
        for k in cfg.model.distiller.distill_losses
    }
    assert set(distill) == expected
    for key in distill + ['train/loss']:
        assert math.isfinite(scalars[key].current()), key
    if not cfg.model.get('calculate_student_loss', True):
        assert 'train/student.loss' not in scalars
    else:
        assert math.isfinite(scalars['train/student.loss'].current())
