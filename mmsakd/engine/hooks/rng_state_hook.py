"""Save and restore the random number generators across resume."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmsakd.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make a resumed run draw the same random numbers as an uninterrupted one.

    MMEngine's checkpoints restore weights, optimizer, schedulers and the
    sampler position, but not the generators that data augmentation (python
    ``random``, numpy) and stochastic model parts (torch: dropout, Gumbel
    noise) draw from. This hook stores those states in every checkpoint under
    ``checkpoint['rng_state']`` and puts them back when training resumes, right
    before the train loop starts (after MMEngine's own re-seeding).

    The result is exact for epoch-based loops with ``num_workers=0`` or
    non-persistent workers (MMEngine re-seeds workers identically every
    epoch). An iteration-based loop replays the pipeline on the batches it
    skips when it resumes, so its augmentations are not reproduced exactly.

    Loading weights with ``load_from`` (not resuming) leaves the generators
    alone.
    """

    priority = 'VERY_HIGH'
    KEY = 'rng_state'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint[self.KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):
            self._pending = checkpoint.get(self.KEY)

    def before_train(self, runner) -> None:
        state, self._pending = self._pending, None
        if state is None:
            return
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
