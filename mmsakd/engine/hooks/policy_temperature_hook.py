"""Anneal the Gumbel-softmax temperature of the SAKD policy."""
import math

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsakd.registry import HOOKS

MODES = ('linear', 'exp')


@HOOKS.register_module()
class PolicyTemperatureHook(Hook):
    """Schedule ``tau`` of a :class:`~mmsakd.models.sakd.SpotPolicyHead`.

    SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP
    2022, arXiv 2205.02399) keeps tau fixed at 5 in the authors' code; this
    hook is an option (not in any shipped config) that moves it from
    ``start`` to ``end`` over training, linearly or geometrically, per
    epoch or per iteration. With hard straight-through gates, tau changes
    only the gradient the policy gets, not which option is sampled.

    Args:
        start (float): tau at the first epoch/iteration. Defaults to 5.0.
        end (float): tau at the last one. Defaults to 1.0.
        mode (str): ``'linear'`` or ``'exp'``. Defaults to ``'linear'``.
        by_epoch (bool): Update before every epoch (True) or iteration.

    Example:
        >>> custom_hooks = [dict(type='mmsakd.PolicyTemperatureHook',
        ...                      start=5.0, end=1.0, mode='exp')]
    """

    priority = 'NORMAL'

    def __init__(self,
                 start: float = 5.0,
                 end: float = 1.0,
                 mode: str = 'linear',
                 by_epoch: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f'PolicyTemperatureHook mode must be one of '
                             f'{MODES}, got {mode!r}')
        if not (start > 0 and end > 0):
            raise ValueError('PolicyTemperatureHook start and end must be '
                             f'> 0, got {start!r}, {end!r}')
        self.start, self.end, self.mode = float(start), float(end), mode
        self.by_epoch = by_epoch

    def tau(self, progress: float) -> float:
        """tau at ``progress`` in [0, 1]."""
        if self.mode == 'linear':
            return self.start + (self.end - self.start) * progress
        return self.start * math.exp(
            math.log(self.end / self.start) * progress)

    def _set(self, runner, step: int, total: int) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        policy = getattr(model, 'sakd_policy', None)
        if policy is None:
            raise TypeError('PolicyTemperatureHook needs a spot-adaptive '
                            'model (model.type=mmsakd.SpotAdaptiveDistill), '
                            f'got {type(model).__name__}')
        policy.set_tau(self.tau(step / max(total - 1, 1)))

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._set(runner, runner.epoch, runner.max_epochs)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if not self.by_epoch:
            self._set(runner, runner.iter, runner.max_iters)
