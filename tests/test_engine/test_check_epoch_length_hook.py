import glob

import pytest

from mmsakd.engine import CheckEpochLengthHook
from tests.test_engine.toy_runner import toy_runner


def test_batch_larger_than_the_dataset_with_drop_last_is_refused(tmp_path):
    runner = toy_runner(
        str(tmp_path), [CheckEpochLengthHook()],
        n=5,
        batch_size=8,
        drop_last=True)
    with pytest.raises(ValueError) as error:
        runner.train()
    assert str(error.value) == (
        'train_dataloader gives 0 iterations per epoch: batch_size=8 (per '
        'rank) with drop_last=True and a dataset of 5 samples (in one '
        'process). Set train_dataloader.batch_size to at most 5 or '
        'train_dataloader.drop_last=False.')
    assert glob.glob(f'{tmp_path}/*.pth') == []


def test_empty_dataset_is_refused(tmp_path):
    runner = toy_runner(str(tmp_path), [CheckEpochLengthHook()], n=0)
    with pytest.raises(
            ValueError,
            match=r'train_dataloader.dataset is empty \(0 samples'):
        runner.train()


def test_a_partial_last_batch_is_fine(tmp_path):
    runner = toy_runner(
        str(tmp_path), [CheckEpochLengthHook()],
        n=5,
        batch_size=8,
        max_epochs=1)
    runner.train()
    assert runner.iter == 1
