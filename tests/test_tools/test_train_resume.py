"""``tools/train.py --resume`` with nothing (or something broken) to resume."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tests.helpers import REPO, run_tool, within
from tools import train as train_tool

CONFIG = f'{REPO}/configs/demo/resnet18-w32_digits.py'
TINY = [
    'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=16',
    'train_dataloader.batch_size=8', 'val_dataloader.dataset.indices=8',
    'val_dataloader.batch_size=8'
]


def _cfg(tmp_path, *argv):
    args = train_tool.parse_args([CONFIG, '--work-dir', str(tmp_path), *argv])
    return train_tool.merge_args(Config.fromfile(args.config), args)


def test_an_explicit_missing_checkpoint_fails(tmp_path):
    missing = str(tmp_path / 'epoch_3.pth')
    with pytest.raises(FileNotFoundError) as error:
        train_tool.check_resume(_cfg(tmp_path, '--resume', missing))
    assert str(error.value) == (
        f'--resume {missing}: no such checkpoint file. Pass an existing '
        'checkpoint, or --resume without a value to resume the newest intact '
        f'checkpoint of the work dir ({tmp_path}).')
    with pytest.raises(ValueError, match='it is a directory, not a regular'):
        train_tool.check_resume(_cfg(tmp_path, '--resume', str(tmp_path)))


@pytest.mark.parametrize('kind', ['a FIFO', 'a character device'])
def test_a_checkpoint_that_is_not_a_regular_file_fails_at_once(tmp_path, kind):
    if kind == 'a FIFO':
        path = str(tmp_path / 'epoch_1.pth')
        os.mkfifo(path)  # reading it would block for ever
    else:
        path = '/dev/zero'  # reading it would never end
    with within(10), pytest.raises(ValueError) as error:
        train_tool.check_resume(_cfg(tmp_path, '--resume', path))
    assert str(error.value).startswith(
        f'--resume {path}: it is {kind}, not a regular checkpoint file. '
        'Pass an existing checkpoint')


def test_an_explicit_truncated_checkpoint_fails(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    torch.save(dict(w=torch.ones(100)), path)
    train_tool.check_resume(_cfg(tmp_path, '--resume', str(path)))
    with open(path, 'r+b') as f:
        f.truncate(50)
    with pytest.raises(
            ValueError, match='the checkpoint is truncated or corrupt'):
        train_tool.check_resume(_cfg(tmp_path, '--resume', str(path)))


def test_auto_and_no_resume_are_not_checked_here(tmp_path):
    train_tool.check_resume(_cfg(tmp_path, '--resume'))
    train_tool.check_resume(_cfg(tmp_path))


@pytest.mark.slow
def test_train_tool_says_what_it_resumes(tmp_path):
    empty = str(tmp_path / 'typo')
    result = run_tool([
        'tools/train.py', CONFIG, '--work-dir', empty, '--resume',
        '--cfg-options', *TINY
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert (f'--resume auto: nothing to resume in work dir {empty} (no '
            'last_checkpoint file, no intact epoch_<N>.pth or iter_<N>.pth): '
            'training starts from scratch.') in out
    assert osp.isfile(osp.join(empty, 'epoch_1.pth'))

    missing = str(tmp_path / 'typo' / 'epoch_9.pth')
    result = run_tool([
        'tools/train.py', CONFIG, '--work-dir', empty, '--resume', missing,
        '--cfg-options', *TINY
    ])
    assert result.returncode != 0
    assert f'--resume {missing}: no such checkpoint file' in result.stderr
    assert 'Epoch(train)' not in result.stdout + result.stderr
