"""A tiny MMEngine Runner (a linear model on a few hand-made samples) for
hook tests: real loops, checkpoints, validation and resume in milliseconds."""
import uuid
from typing import Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyDataset(Dataset):
    """``n`` samples ``x = (i, 1)``; ``nan_at`` makes one sample NaN."""

    def __init__(self, n: int = 8, nan_at: Optional[int] = None) -> None:
        self.n, self.nan_at = n, nan_at

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        x = torch.tensor([i / self.n, 1.0])
        if i == self.nan_at:
            x = torch.full((2, ), float('nan'))
        return dict(inputs=x, data_samples=torch.tensor(float(i % 2)))


class ToyModel(BaseModel):
    """A linear regressor; with ``rates`` it reports spot rates like
    :class:`~mmsakd.models.algorithms.SpotAdaptiveDistill`
    (``sakd.rate.<spot>`` in its loss dict)."""

    def __init__(self, rates: bool = False) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.rates = rates

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(list(inputs))
        y = torch.stack(list(data_samples))
        out = self.linear(x).squeeze(1)
        if mode == 'loss':
            losses = dict(loss_mse=((out - y)**2).mean())
            if self.rates:
                # depend on the data only, so that they are reproducible
                losses['sakd.rate.neck'] = (x[:, 0] > 0.5).float().mean()
                losses['sakd.rate.logits'] = (x[:, 0] < 0.3).float().mean()
            return losses
        return [dict(pred=p, target=t) for p, t in zip(out, y)]


class ToyMetric(BaseMetric):
    """1 - mean absolute error, higher is better (``save_best``)."""
    default_prefix = 'toy'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        self.results += [
            abs(float(d['pred'] - d['target'])) for d in data_samples
        ]

    def compute_metrics(self, results: list) -> dict:
        return dict(accuracy=1 - sum(results) / len(results))


def toy_runner(work_dir: str,
               hooks: Sequence[Hook] = (),
               max_epochs: int = 2,
               n: int = 8,
               batch_size: int = 2,
               nan_at: Optional[int] = None,
               drop_last: bool = False,
               rates: bool = False,
               resume: bool = False,
               load_from: Optional[str] = None,
               lr: float = 0.1) -> Runner:
    """A Runner that checkpoints every epoch and keeps the best one."""
    return Runner(
        model=ToyModel(rates=rates),
        work_dir=work_dir,
        experiment_name=f'toy_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=ToyDataset(n, nan_at),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=batch_size,
            drop_last=drop_last,
            num_workers=0),
        val_dataloader=dict(
            dataset=ToyDataset(4),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        val_evaluator=Evaluator([ToyMetric()]),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=1, save_best='auto'),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=list(hooks),
        resume=resume,
        load_from=load_from,
        randomness=dict(seed=0),
        default_scope='mmengine')
