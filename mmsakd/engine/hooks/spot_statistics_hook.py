"""Where SAKD distilled: per-spot fractions of samples, logged and saved."""
import csv
import json
import os.path as osp
from typing import List, Optional

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook

from mmsakd.registry import HOOKS


@HOOKS.register_module()
class SpotStatisticsHook(Hook):
    """Log and save, per spot, the fraction of samples the policy distilled.

    SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP
    2022, arXiv 2205.02399) decides per sample whether to distill at each
    spot; this hook reports the resulting rates of a
    :class:`~mmsakd.models.algorithms.SpotAdaptiveDistill` model:

    * every ``interval`` iterations, the fraction over that window;
    * at the end of every epoch, the fraction over the epoch (summed over
      all ranks in distributed training).

    Both go to MMEngine's logger and visualizer (``sakd/window/<spot>``,
    ``sakd/epoch/<spot>``) and to ``<work_dir>/spot_statistics.json`` and
    ``.csv`` (one row per report: ``kind``, ``epoch``, ``iter``, one column
    per spot). The rates are read from the iteration's ``outputs`` (the
    ``sakd.rate.<spot>`` entries of the model's loss dict), so iterations
    without them -- after MMRazor's ``StopDistillationHook`` stopped
    distillation, or with a model that is not spot-adaptive -- count nothing.

    The rows and the open window and epoch sums are stored in every
    checkpoint (``checkpoint['spot_statistics']``); a resumed run continues
    from them and writes the same files as an uninterrupted run. Resuming a
    checkpoint written without them keeps the rows of the files in the work
    dir up to the resumed iteration. In distributed training checkpoints
    hold rank 0's sums: exact for checkpoints at epoch ends (the default),
    while resuming an iteration checkpoint taken mid-epoch gives every rank
    rank 0's partial epoch sums.

    Args:
        interval (int): Window length in iterations. Defaults to 50.
        filename (str): Base name of the files in the work dir.
    """

    priority = 'LOW'
    KEY = 'spot_statistics'
    PREFIX = 'sakd.rate.'

    def __init__(self,
                 interval: int = 50,
                 filename: str = 'spot_statistics') -> None:
        if not (isinstance(interval, int) and interval >= 1):
            raise ValueError('SpotStatisticsHook interval must be an int >= '
                             f'1, got {interval!r}')
        self.interval = interval
        self.filename = filename
        self.rows: List[dict] = []
        self._window: Optional[torch.Tensor] = None
        self._window_n = 0
        self._epoch: Optional[torch.Tensor] = None
        self._epoch_n = 0
        self._names: List[str] = []
        self._pending: Optional[dict] = None

    def _state(self) -> dict:
        return dict(
            rows=list(self.rows),
            names=list(self._names),
            window=self._window,
            window_n=self._window_n,
            epoch=self._epoch,
            epoch_n=self._epoch_n)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[self.KEY] = self._state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):
            self._pending = checkpoint.get(self.KEY)

    def before_train(self, runner) -> None:
        state, self._pending = self._pending, None
        if state is not None:
            self.rows = list(state['rows'])
            self._names = list(state['names'])
            self._window, self._window_n = state['window'], state['window_n']
            self._epoch, self._epoch_n = state['epoch'], state['epoch_n']
            if is_main_process():  # drop rows written after the checkpoint
                self._write(runner.work_dir)
            return
        path = osp.join(runner.work_dir, f'{self.filename}.json')
        if runner.iter > 0 and osp.isfile(path):
            # a checkpoint written before the state was stored in it
            with open(path) as f:
                self.rows = [
                    r for r in json.load(f) if r['iter'] <= runner.iter
                ]
        else:
            self.rows = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        rates = {
            k[len(self.PREFIX):]: v
            for k, v in (outputs or {}).items() if k.startswith(self.PREFIX)
        }
        if not rates:
            return
        names = list(rates)
        if self._names and names != self._names:
            raise ValueError(
                f'SpotStatisticsHook: the model reported the spots {names} '
                f'after {self._names}; the spots must not change in training')
        self._names = names
        n = len(data_batch['inputs']) if isinstance(data_batch, dict) else 1
        counts = torch.tensor([float(v) for v in rates.values()],
                              dtype=torch.float64) * n
        for attr in ('_window', '_epoch'):
            total = getattr(self, attr)
            setattr(self, attr, counts if total is None else total + counts)
        self._window_n += n
        self._epoch_n += n
        if self.every_n_train_iters(runner, self.interval):
            # after_train_iter runs before the loop counts this iteration
            self._report(
                runner,
                'window',
                self._window,
                self._window_n,
                epoch=runner.epoch,
                iteration=runner.iter + 1,
                reduce=False)
            self._window, self._window_n = None, 0

    def after_train_epoch(self, runner) -> None:
        if self._epoch is None:
            return
        # after_train_epoch runs after the loop counted the last iteration
        # and before it counts the epoch
        self._report(
            runner,
            'epoch',
            self._epoch,
            self._epoch_n,
            epoch=runner.epoch + 1,
            iteration=runner.iter,
            reduce=True)
        self._epoch, self._epoch_n = None, 0

    def _report(self, runner, kind: str, counts: torch.Tensor, n: int,
                epoch: int, iteration: int, reduce: bool) -> None:
        if reduce:
            totals = torch.cat([counts, counts.new_tensor([n])])
            all_reduce(totals)
            counts, n = totals[:-1], totals[-1].item()
        rates = (counts / max(n, 1)).tolist()
        names = self._names
        row = dict(
            kind=kind, epoch=epoch, iter=iteration, **dict(zip(names, rates)))
        runner.visualizer.add_scalars(
            {
                f'sakd/{kind}/{name}': rate
                for name, rate in zip(names, rates)
            },
            step=iteration)
        if kind == 'epoch':
            runner.logger.info('SAKD distill rate per spot (epoch ' +
                               f'{row["epoch"]}): ' +
                               ', '.join(f'{k} {v:.3f}'
                                         for k, v in zip(names, rates)))
        self.rows.append(row)
        if is_main_process():
            self._write(runner.work_dir)

    def _write(self, work_dir: str) -> None:
        base = osp.join(work_dir, self.filename)
        with open(f'{base}.json', 'w') as f:
            json.dump(self.rows, f, indent=1)
        fields: List[str] = []
        for row in self.rows:
            fields += [k for k in row if k not in fields]
        with open(f'{base}.csv', 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows)
