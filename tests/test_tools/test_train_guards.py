"""tools/train.py stops runs that would exit 0 with wrong results."""
import glob

import pytest

from tests.helpers import REPO, run_tool

pytestmark = pytest.mark.slow

CONFIG = f'{REPO}/configs/demo/resnet18-w32_digits.py'
TINY = [
    'train_cfg.max_epochs=2', 'train_dataloader.dataset.indices=32',
    'train_dataloader.batch_size=16', 'val_dataloader.dataset.indices=16',
    'val_dataloader.batch_size=16'
]


def _train(work_dir, *options):
    return run_tool([
        'tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
        *TINY, *options
    ])


def test_a_zero_std_stops_at_the_first_nan_loss(tmp_path):
    result = _train(str(tmp_path), 'data_preprocessor.std=[0,0,0]')
    assert result.returncode != 0
    assert ('FloatingPointError: Non-finite loss at epoch 1, iteration 1 '
            '(batch 1 of the epoch): loss=nan.') in result.stderr
    assert 'data_preprocessor.std' in result.stderr
    assert glob.glob(f'{tmp_path}/*.pth') == []


def test_epochs_without_iterations_are_refused(tmp_path):
    result = _train(
        str(tmp_path), 'train_dataloader.dataset.indices=8',
        'train_dataloader.drop_last=True')
    assert result.returncode != 0
    assert ('ValueError: train_dataloader gives 0 iterations per epoch: '
            'batch_size=16 (per rank) with drop_last=True and a dataset of 8 '
            'samples (in one process). Set train_dataloader.batch_size to at '
            'most 8 or train_dataloader.drop_last=False.') in result.stderr
    assert 'Epoch(train)' not in result.stdout + result.stderr
    assert glob.glob(f'{tmp_path}/*.pth') == []
