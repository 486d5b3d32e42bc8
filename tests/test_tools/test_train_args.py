import os

import pytest
from mmengine.config import Config

from tests.helpers import REPO
from tools import test as test_tool
from tools import train as train_tool

CONFIG = f'{REPO}/configs/distill/kd-fitnet_r18w32-r18w16_cifar100.py'


def _merge(*argv):
    args = train_tool.parse_args([CONFIG, *argv])
    return train_tool.merge_args(Config.fromfile(args.config), args)


def test_defaults():
    cfg = _merge()
    assert cfg.launcher == 'none'
    assert cfg.work_dir == './work_dirs/kd-fitnet_r18w32-r18w16_cifar100'
    assert cfg.resume is False and cfg.load_from is None
    assert cfg.optim_wrapper.type == 'OptimWrapper'


def test_resume_auto_and_path():
    cfg = _merge('--resume')
    assert cfg.resume is True and cfg.load_from is None
    cfg = _merge('--resume', 'work_dirs/x/epoch_3.pth')
    assert cfg.resume is True and cfg.load_from == 'work_dirs/x/epoch_3.pth'


def test_amp_and_work_dir_and_cfg_options():
    cfg = _merge('--amp', '--work-dir', '/tmp/wd', '--cfg-options',
                 'train_cfg.max_epochs=7', 'model.teacher_ckpt=t.pth')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.work_dir == '/tmp/wd'
    assert cfg.train_cfg.max_epochs == 7
    assert cfg.model.teacher_ckpt == 't.pth'


def test_auto_scale_lr():
    cfg = _merge('--auto-scale-lr')
    assert cfg.auto_scale_lr == dict(base_batch_size=64, enable=True)
    args = train_tool.parse_args([CONFIG, '--auto-scale-lr'])
    cfg = Config.fromfile(CONFIG)
    cfg.auto_scale_lr = dict()
    with pytest.raises(ValueError, match='base_batch_size'):
        train_tool.merge_args(cfg, args)


def test_dataloader_switches_and_no_validate():
    cfg = _merge('--no-pin-memory', '--no-persistent-workers', '--no-validate')
    assert cfg.train_dataloader.pin_memory is False
    assert cfg.train_dataloader.persistent_workers is False
    assert cfg.val_cfg is None and cfg.val_dataloader is None


@pytest.mark.parametrize('flag', ['--local-rank', '--local_rank'])
def test_both_local_rank_spellings(flag, monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = train_tool.parse_args([CONFIG, flag, '3', '--launcher', 'pytorch'])
    assert args.local_rank == 3 and args.launcher == 'pytorch'
    assert os.environ['LOCAL_RANK'] == '3'


def test_launcher_choices():
    for launcher in ('none', 'pytorch', 'slurm', 'mpi'):
        assert train_tool.parse_args([CONFIG, '--launcher',
                                      launcher]).launcher == launcher
    with pytest.raises(SystemExit):
        train_tool.parse_args([CONFIG, '--launcher', 'ray'])


def test_test_tool_arguments(tmp_path):
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    args = test_tool.parse_args(
        [CONFIG, str(ckpt), '--out',
         str(tmp_path / 'preds.pkl')])
    cfg = test_tool.merge_args(Config.fromfile(CONFIG), args)
    assert cfg.load_from == str(ckpt) and cfg.resume is False
    assert cfg.test_evaluator[-1]['type'] == 'mmpretrain.DumpResults'
    with pytest.raises(SystemExit):
        test_tool.parse_args([CONFIG, str(ckpt), '--out', 'preds.json'])
    args = test_tool.parse_args([CONFIG, str(tmp_path / 'missing.pth')])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        test_tool.merge_args(Config.fromfile(CONFIG), args)
