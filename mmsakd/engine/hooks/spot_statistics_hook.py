"""Where SAKD distilled: per-spot fractions of samples, logged and saved."""
import csv
import json
import os.path as osp
from typing import List, Optional

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

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
    per spot). A resumed run keeps the rows up to the resumed iteration.

    Args:
        interval (int): Window length in iterations. Defaults to 50.
        filename (str): Base name of the files in the work dir.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50,
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

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        path = osp.join(runner.work_dir, f'{self.filename}.json')
        if osp.isfile(path):
            with open(path) as f:
                self.rows = [
                    r for r in json.load(f) if r['iter'] <= runner.iter
                ]
        else:
            self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        model = self._model(runner)
        rates = getattr(model, 'last_gate_rates', None)
        if rates is None:
            return
        n = len(data_batch['inputs']) if isinstance(data_batch, dict) else 1
        counts = rates.detach().double().cpu() * n
        for attr in ('_window', '_epoch'):
            total = getattr(self, attr)
            setattr(self, attr, counts if total is None else total + counts)
        self._window_n += n
        self._epoch_n += n
        if self.every_n_train_iters(runner, self.interval):
            self._report(runner, model, 'window', self._window,
                         self._window_n, reduce=False)
            self._window, self._window_n = None, 0

    def after_train_epoch(self, runner) -> None:
        if self._epoch is None:
            return
        model = self._model(runner)
        self._report(runner, model, 'epoch', self._epoch, self._epoch_n,
                     reduce=True)
        self._epoch, self._epoch_n = None, 0

    def _report(self, runner, model, kind: str, counts: torch.Tensor,
                n: int, reduce: bool) -> None:
        if reduce:
            totals = torch.cat([counts, counts.new_tensor([n])])
            all_reduce(totals)
            counts, n = totals[:-1], totals[-1].item()
        rates = (counts / max(n, 1)).tolist()
        names = list(model.spot_names)
        row = dict(kind=kind, epoch=runner.epoch + (kind == 'epoch'),
                   iter=runner.iter + 1, **dict(zip(names, rates)))
        runner.visualizer.add_scalars(
            {f'sakd/{kind}/{name}': rate
             for name, rate in zip(names, rates)},
            step=runner.iter + 1)
        if kind == 'epoch':
            runner.logger.info('SAKD distill rate per spot (epoch ' +
                               f'{row["epoch"]}): ' + ', '.join(
                                   f'{k} {v:.3f}'
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
