import glob
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook

from mmsakd.engine import CheckFiniteLossHook
from tests.test_engine.toy_runner import toy_runner

NAN = float('nan')


def _runner(work_dir='/work'):
    return SimpleNamespace(epoch=2, iter=41, work_dir=work_dir)


def test_names_the_loss_the_epoch_and_the_iteration():
    hook = CheckFiniteLossHook()
    outputs = dict(
        loss=torch.tensor(NAN),
        student_loss=torch.tensor(1.0),
        **{
            'distill.loss_kd': torch.tensor(NAN),
            'sakd.rate.neck': torch.tensor(NAN)
        })
    with pytest.raises(FloatingPointError) as error:
        hook.after_train_iter(_runner(), 1, outputs=outputs)
    message = str(error.value)
    assert message.startswith('Non-finite loss at epoch 3, iteration 42 '
                              '(batch 2 of the epoch): distill.loss_kd=nan, '
                              'loss=nan.')
    assert 'student_loss' not in message  # finite
    assert 'sakd.rate' not in message  # not a loss
    assert 'no checkpoint had been written to /work' in message
    assert 'data_preprocessor.std' in message


def test_finite_losses_and_logged_values_pass():
    hook = CheckFiniteLossHook()
    hook.after_train_iter(
        _runner(),
        0,
        outputs=dict(
            loss=torch.tensor(2.0),
            loss_kd=torch.tensor(1.0),
            route_ce=torch.tensor(float('inf'))))
    hook.after_train_iter(_runner(), 0, outputs=None)


def test_inf_is_refused_too():
    with pytest.raises(FloatingPointError, match='loss_cls=inf'):
        CheckFiniteLossHook().after_train_iter(
            _runner(), 0, outputs=dict(loss_cls=torch.tensor(float('inf'))))


def test_refuses_to_save_non_finite_weights():
    hook = CheckFiniteLossHook()
    state = {f'w{i}': torch.tensor([1.0, NAN]) for i in range(5)}
    state.update(ok=torch.ones(2), count=torch.tensor(3))
    checkpoint = dict(meta=dict(epoch=2, iter=8), state_dict=state)
    with pytest.raises(FloatingPointError) as error:
        hook.before_save_checkpoint(_runner(), checkpoint)
    assert ('Refusing to save a checkpoint with non-finite weights (epoch 2, '
            'iteration 8): 5 tensors, e.g. w0, w1, w2 and 2 more') in str(
                error.value)
    checkpoint['state_dict'] = dict(ok=torch.ones(2))
    hook.before_save_checkpoint(_runner(), checkpoint)


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_names_the_checkpoints_it_leaves(tmp_path):
    torch.save({}, tmp_path / 'best_acc_epoch_1.pth')
    with pytest.raises(
            FloatingPointError,
            match=f'the checkpoints in {tmp_path} '
            r'\(best_acc_epoch_1.pth\) are left as they were'):
        CheckFiniteLossHook().after_train_iter(
            _runner(work_dir=str(tmp_path)),
            0,
            outputs=dict(loss=torch.tensor(NAN)))
    # last_checkpoint names the checkpoint to resume
    with open(tmp_path / 'last_checkpoint', 'w') as f:
        f.write(f'{tmp_path}/epoch_3.pth')
    with pytest.raises(
            FloatingPointError,
            match=f'the last checkpoint, {tmp_path}/epoch_3.pth, '
            'is left as it was'):
        CheckFiniteLossHook().after_train_iter(
            _runner(work_dir=str(tmp_path)),
            0,
            outputs=dict(loss=torch.tensor(NAN)))


def test_runner_stops_and_keeps_the_last_good_checkpoints(tmp_path):
    """A NaN sample in the second epoch (sample 5 of 8, batch 3 of 4): the
    run stops there; the epoch-1 and best checkpoints stay, nothing from
    epoch 2 is written."""
    work_dir = str(tmp_path)
    runner = toy_runner(
        work_dir, [CheckFiniteLossHook()], max_epochs=2, nan_at=5)
    # epoch 1 is finite: the NaN sample only enters from epoch 2
    runner.train_dataloader.dataset.nan_at = None
    original = runner.train_loop.run_epoch

    def run_epoch():
        if runner.epoch == 1:
            runner.train_dataloader.dataset.nan_at = 5
        original()

    runner.train_loop.run_epoch = run_epoch
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    assert ('Non-finite loss at epoch 2, iteration 7 (batch 3 of the epoch): '
            'loss_mse=nan, loss=nan. Training stopped before any checkpoint '
            'of this iteration was written; the last checkpoint, '
            f'{work_dir}/epoch_1.pth, is left as it was.') in str(error.value)
    names = sorted(osp.basename(p) for p in glob.glob(f'{work_dir}/*.pth'))
    assert names == ['best_toy_accuracy_epoch_1.pth', 'epoch_1.pth']
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().endswith('epoch_1.pth')
    for name in names:
        for value in _weights(osp.join(work_dir, name))['state_dict'].values():
            assert torch.isfinite(value).all()


class _Overflow(Hook):
    """Stands for an update that overflows the weights: the loss of the
    iteration was finite, the weights after it are not."""
    priority = 'LOWEST'

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        with torch.no_grad():
            runner.model.linear.weight.fill_(float('inf'))


def test_weights_made_non_finite_by_the_last_update_are_not_saved(tmp_path):
    work_dir = str(tmp_path)
    runner = toy_runner(
        work_dir, [CheckFiniteLossHook(), _Overflow()],
        max_epochs=1,
        n=2,
        batch_size=2)
    with pytest.raises(
            FloatingPointError,
            match='Non-finite weights at the end of epoch 1 '
            r'\(iteration 1\): 1 tensors, e.g. linear.weight. No '
            'checkpoint of this epoch was written and it was not '
            'validated'):
        runner.train()
    assert glob.glob(f'{work_dir}/*.pth') == []
