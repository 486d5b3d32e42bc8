"""Stop training at the first non-finite loss; never save NaN weights."""
import glob
import math
import os.path as osp
from typing import Dict, List

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsakd.registry import HOOKS

CAUSES = ('Usual causes: a learning rate too high (optim_wrapper.optimizer.'
          'lr), a 0 in data_preprocessor.std, NaN/inf in the input data, or '
          'a loss weight too high.')


def last_checkpoint(work_dir: str) -> str:
    """Say which checkpoints a stopped run leaves in ``work_dir``."""
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            path = f.read().strip()
        if path:
            return f'the last checkpoint, {path}, is left as it was'
    names = sorted(
        osp.basename(p)
        for p in glob.glob(osp.join(glob.escape(work_dir), '*.pth')))
    if names:
        return (f'the checkpoints in {work_dir} ({", ".join(names)}) are '
                'left as they were')
    return f'no checkpoint had been written to {work_dir}'


def non_finite(values: Dict[str, object]) -> Dict[str, float]:
    """The entries of ``values`` that are not finite numbers, as floats."""
    bad = {}
    for key, value in values.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().float()
            if not bool(torch.isfinite(value).all()):
                bad[key] = float(value[~torch.isfinite(value)].flatten()[0])
        elif isinstance(value, (int, float)) and not math.isfinite(value):
            bad[key] = float(value)
    return bad


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Stop at the first non-finite loss instead of training on NaN.

    Without it a run whose loss turned NaN (a 0 in the preprocessor's std, a
    learning rate too high, ...) trains on to the end, exits 0, and MMEngine's
    ``CheckpointHook`` saves, and may promote as "best", checkpoints full of
    NaN. MMEngine's ``CheckInvalidLossHook`` only checks every ``interval``
    iterations and names neither the loss nor where it happened.

    This hook:

    * after every training iteration, checks every entry of the loss dict
      whose name contains ``loss`` (the ones summed into the training loss)
      and raises :class:`FloatingPointError` naming the non-finite ones, the
      epoch and the iteration; it runs before ``CheckpointHook``, so no
      checkpoint is written from that iteration on;
    * at the end of every training epoch, before ``CheckpointHook`` saves and
      before validation, checks the model's parameters and buffers (an update
      can make weights non-finite while the loss that produced it was
      finite);
    * refuses to write a checkpoint whose ``state_dict`` holds a non-finite
      value (a last guard, e.g. for iteration-based checkpoints).

    In distributed training the first two checks agree across ranks (one
    small all-reduce), so every rank stops at the same iteration. The last
    checkpoint written before the failure stays as it is.

    Reading the loss values costs no extra device synchronisation:
    MMEngine's ``RuntimeInfoHook`` already reads them every iteration.
    """

    priority = 'ABOVE_NORMAL'  # before LoggerHook and CheckpointHook

    @staticmethod
    def _stop_everywhere(bad: bool) -> bool:
        """True on every rank when ``bad`` is True on any rank."""
        if get_world_size() == 1:
            return bad
        flag = torch.tensor([float(bad)])
        all_reduce(flag)
        return bool(flag.item() > 0)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        losses = {k: v for k, v in (outputs or {}).items() if 'loss' in k}
        bad = non_finite(losses)
        if not self._stop_everywhere(bool(bad)):
            return
        # the total "loss" is non-finite whenever a part is: name parts first
        parts = sorted(bad, key=lambda k: k == 'loss')
        where = (f'epoch {runner.epoch + 1}, iteration {runner.iter + 1} '
                 f'(batch {batch_idx + 1} of the epoch)')
        if parts:
            what = ', '.join(f'{k}={bad[k]}' for k in parts)
            message = f'Non-finite loss at {where}: {what}.'
        else:
            message = (f'Non-finite loss on another rank at {where} '
                       '(this rank\'s losses are finite).')
        raise FloatingPointError(
            f'{message} Training stopped before any checkpoint of this '
            f'iteration was written; {last_checkpoint(runner.work_dir)}. '
            f'{CAUSES}')

    def after_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        tensors = dict(model.named_parameters())
        tensors.update(model.named_buffers())
        bad = self._names(tensors)
        if self._stop_everywhere(bool(bad)):
            raise FloatingPointError(
                f'Non-finite weights at the end of epoch {runner.epoch + 1} '
                f'(iteration {runner.iter}): {self._summary(bad)}. No '
                'checkpoint of this epoch was written and it was not '
                f'validated; {last_checkpoint(runner.work_dir)}. {CAUSES}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = self._names(checkpoint.get('state_dict', {}))
        if bad:
            meta = checkpoint.get('meta', {})
            raise FloatingPointError(
                'Refusing to save a checkpoint with non-finite weights '
                f'(epoch {meta.get("epoch")}, iteration {meta.get("iter")}): '
                f'{self._summary(bad)}; '
                f'{last_checkpoint(runner.work_dir)}. {CAUSES}')

    @staticmethod
    def _names(tensors: dict) -> List[str]:
        return [
            name for name, value in tensors.items()
            if isinstance(value, torch.Tensor) and torch.is_floating_point(
                value) and not bool(torch.isfinite(value).all())
        ]

    @staticmethod
    def _summary(names: List[str], first: int = 3) -> str:
        more = f' and {len(names) - first} more' if len(names) > first else ''
        return f'{len(names)} tensors, e.g. {", ".join(names[:first])}{more}'
