import contextlib
import fnmatch
import os
import os.path as osp
import resource
import signal
import time

import pytest
import torch
from mmengine.runner import checkpoint as checkpoint_module
from mmengine.runner import runner as runner_module

from mmsakd.compat import (RUN_CHECKPOINT, checkpoint_is_intact,
                           newest_intact_checkpoint, not_a_regular_file,
                           patch_atomic_checkpoints)
from tests.helpers import within
from tests.test_engine.toy_runner import toy_runner

BIG = dict(state_dict=dict(w=torch.ones(256, 1024)))  # 1 MiB


@contextlib.contextmanager
def disk_full_after(nbytes: int):
    """Writes past ``nbytes`` in any file fail (EFBIG), as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def _truncate(path, keep=100):
    with open(path, 'r+b') as f:
        f.truncate(keep)


def test_the_patch_is_applied_everywhere_and_idempotent():
    assert patch_atomic_checkpoints() == []
    for module in (checkpoint_module, runner_module):
        assert getattr(module.save_checkpoint, '_mmsakd_atomic_patched')
        assert getattr(module.find_latest_checkpoint, '_mmsakd_atomic_patched')


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = str(tmp_path / 'best.pth')
    checkpoint_module.save_checkpoint(dict(step=1), path)
    # torch.save reports the failed write as a RuntimeError
    with disk_full_after(64 * 1024), pytest.raises((OSError, RuntimeError)):
        checkpoint_module.save_checkpoint(BIG, path)
    assert torch.load(path, weights_only=True) == dict(step=1)
    assert os.listdir(tmp_path) == ['best.pth']  # no temporary file left
    checkpoint_module.save_checkpoint(BIG, path)
    assert torch.equal(
        torch.load(path, weights_only=True)['state_dict']['w'],
        BIG['state_dict']['w'])


def test_without_the_patch_a_failed_write_truncates_the_file(tmp_path):
    original = checkpoint_module.save_checkpoint.__wrapped__
    path = str(tmp_path / 'best.pth')
    original(dict(step=1), path)
    with disk_full_after(64 * 1024), pytest.raises(OSError):
        original(BIG, path)
    assert osp.getsize(path) == 64 * 1024
    assert not checkpoint_is_intact(path)


def test_intact_means_a_complete_archive(tmp_path):
    path = str(tmp_path / 'a.pth')
    torch.save(BIG, path)
    assert checkpoint_is_intact(path)
    _truncate(path, osp.getsize(path) - 10)
    assert not checkpoint_is_intact(path)
    assert not checkpoint_is_intact(str(tmp_path / 'missing.pth'))
    open(tmp_path / 'empty.pth', 'wb').close()
    assert not checkpoint_is_intact(str(tmp_path / 'empty.pth'))


def _work_dir(tmp_path, truncate_last=True):
    names = ('epoch_1.pth', 'best_acc_epoch_2.pth', 'epoch_2.pth')
    for i, name in enumerate(names):
        torch.save(dict(i=i), tmp_path / name)
        os.utime(tmp_path / name, (time.time() + i, time.time() + i))
    if truncate_last:
        _truncate(tmp_path / 'epoch_2.pth')
    with open(tmp_path / 'last_checkpoint', 'w') as f:
        f.write(str(tmp_path / 'epoch_2.pth'))
    return str(tmp_path)


def test_resume_auto_skips_a_truncated_last_checkpoint(tmp_path,
                                                       mmengine_warnings):
    work_dir = _work_dir(tmp_path)
    assert runner_module.find_latest_checkpoint(work_dir) == osp.join(
        work_dir, 'epoch_1.pth')  # not best_*: it has no optimizer state
    assert (f'{work_dir}/last_checkpoint names {work_dir}/epoch_2.pth, '
            'which is truncated or corrupt; resuming from '
            f'{work_dir}/epoch_1.pth, the newest intact checkpoint there, '
            'instead.') in mmengine_warnings.text
    # mmengine's own function trusts last_checkpoint
    original = runner_module.find_latest_checkpoint.__wrapped__
    assert original(work_dir) == osp.join(work_dir, 'epoch_2.pth')


def test_resume_auto_uses_an_intact_last_checkpoint(tmp_path,
                                                    mmengine_warnings):
    work_dir = _work_dir(tmp_path, truncate_last=False)
    assert runner_module.find_latest_checkpoint(work_dir) == osp.join(
        work_dir, 'epoch_2.pth')
    assert mmengine_warnings.text == ''


def test_resume_auto_with_nothing_to_resume_says_where_it_looked(
        tmp_path, mmengine_warnings):
    assert runner_module.find_latest_checkpoint(str(tmp_path)) is None
    assert (f'--resume auto: nothing to resume in work dir {tmp_path} (no '
            'last_checkpoint file, no intact epoch_<N>.pth or iter_<N>.pth): '
            'training starts from scratch.') in mmengine_warnings.text


def test_resume_auto_never_picks_an_exported_student(tmp_path,
                                                     mmengine_warnings):
    work_dir = _work_dir(tmp_path)
    # newer and intact, but not one of the run's checkpoints
    for name in ('student_epoch_2.pth', 'epoch_2_student.pth', 'teacher.pth'):
        torch.save(dict(state_dict={}), tmp_path / name)
        os.utime(tmp_path / name, (time.time() + 10, time.time() + 10))
    assert runner_module.find_latest_checkpoint(work_dir) == osp.join(
        work_dir, 'epoch_1.pth')
    assert f'resuming from {work_dir}/epoch_1.pth' in mmengine_warnings.text


def test_resume_auto_falls_back_to_iter_checkpoints(tmp_path):
    for i, name in enumerate(('iter_500.pth', 'iter_1000.pth')):
        torch.save(dict(i=i), tmp_path / name)
        os.utime(tmp_path / name, (time.time() + i, time.time() + i))
    assert runner_module.find_latest_checkpoint(str(tmp_path)) == str(
        tmp_path / 'iter_1000.pth')


def test_the_converter_default_output_is_not_a_run_checkpoint():
    from tools.model_converters.convert_kd_ckpt_to_student import output_path
    out = osp.basename(output_path('work_dirs/x/epoch_240.pth'))
    assert out == 'student_epoch_240.pth'
    assert not RUN_CHECKPOINT.fullmatch(out)
    assert not fnmatch.fnmatch(out, 'epoch_*.pth')


@pytest.mark.parametrize('odd', ['fifo', '/dev/zero'])
def test_resume_auto_never_opens_an_odd_file(tmp_path, mmengine_warnings, odd):
    work_dir = _work_dir(tmp_path)
    if odd == 'fifo':
        target = str(tmp_path / 'epoch_3.pth')
        os.mkfifo(target)
        kind = 'a FIFO'
    else:
        target, kind = odd, 'a character device'
    with open(tmp_path / 'last_checkpoint', 'w') as f:
        f.write(target)
    with within(10):  # a FIFO blocks, /dev/zero reads without end
        found = runner_module.find_latest_checkpoint(work_dir)
    assert found == osp.join(work_dir, 'epoch_1.pth')
    assert (f'names {target}, which is {kind}, not a regular file; resuming '
            f'from {work_dir}/epoch_1.pth') in mmengine_warnings.text
    assert not_a_regular_file(target) == kind
    assert not checkpoint_is_intact(target)


def test_resume_auto_never_reads_a_last_checkpoint_that_is_a_fifo(
        tmp_path, mmengine_warnings):
    work_dir = _work_dir(tmp_path)
    os.remove(tmp_path / 'last_checkpoint')
    os.mkfifo(tmp_path / 'last_checkpoint')
    with within(10):
        found = runner_module.find_latest_checkpoint(work_dir)
    assert found == osp.join(work_dir, 'epoch_1.pth')
    assert (f'{work_dir}/last_checkpoint is a FIFO, not a regular file; it '
            'is not read') in mmengine_warnings.text


def test_newest_intact_checkpoint_by_pattern(tmp_path):
    work_dir = _work_dir(tmp_path)
    assert newest_intact_checkpoint(work_dir, 'best_*.pth',
                                    '') == osp.join(work_dir,
                                                    'best_acc_epoch_2.pth')
    assert newest_intact_checkpoint(work_dir, 'none_*.pth') is None


def test_runner_resumes_from_the_newest_intact_checkpoint(tmp_path):
    work_dir = str(tmp_path)
    toy_runner(work_dir, max_epochs=2).train()
    _truncate(osp.join(work_dir, 'epoch_2.pth'))
    runner = toy_runner(work_dir, max_epochs=3, resume=True)
    runner.train()
    assert runner.iter == 12  # epochs 2 and 3 after epoch 1: 3 x 4
    assert checkpoint_is_intact(osp.join(work_dir, 'epoch_3.pth'))
