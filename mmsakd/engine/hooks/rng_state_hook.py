"""Save and restore the random number generators across resume."""
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from mmsakd.registry import HOOKS


def _local_state() -> dict:
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_local_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make a resumed run draw the same random numbers as an uninterrupted one.

    MMEngine's checkpoints restore weights, optimizer, schedulers and the
    sampler position, but not the generators that data augmentation (python
    ``random``, numpy) and stochastic model parts (torch: dropout, the
    policy's Gumbel noise) draw from. This hook stores those states in every
    checkpoint under ``checkpoint['rng_state']`` and puts them back when
    training resumes, right before the train loop starts (after MMEngine's
    own re-seeding).

    In distributed training every rank draws from generators of its own
    (MMEngine seeds them differently when ``diff_rank_seed=True``, and they
    drift apart anyway: each rank draws Gumbel noise for its own samples).
    Only rank 0 writes checkpoints, so right before a checkpoint is saved the
    ranks gather their states, and the checkpoint holds
    ``dict(world_size=N, ranks=[state of rank 0, ..., state of rank N-1])``;
    on resume each rank takes its own. A checkpoint resumed with another
    number of ranks cannot be matched rank to rank: the generators keep their
    seeded states, with a warning. A single process writes and reads one
    state, as before (checkpoints of both layouts load in either setting
    where the rank count matches).

    The gather runs only at the iterations and epochs where a
    :class:`~mmengine.hooks.CheckpointHook` of the runner saves (its
    ``interval``, ``save_begin`` and ``save_last``), so distributed training
    pays one small ``all_gather_object`` per checkpoint, not per step.

    Validation during training draws from the same generators (creating a
    dataloader iterator draws a base seed from torch's generator on every
    rank), after the checkpoint of that step is written and before training
    goes on; a resumed run skips that validation. So the hook gives
    validation inside training a copy of the generators: their states are
    put back after each validation epoch (before the checkpoint hook writes
    the best checkpoint), and the state a checkpoint holds
    is the one the next training step starts from, whether or not MMEngine
    writes the checkpoint again after validation (it does when the best
    score improves). This changes which random numbers an uninterrupted run
    draws after its first validation, not how it trains.

    The result is exact for epoch-based loops with ``num_workers=0`` or
    non-persistent workers (MMEngine re-seeds workers identically every
    epoch). An iteration-based loop replays the pipeline on the batches it
    skips when it resumes, so its augmentations are not reproduced exactly.

    Loading weights with ``load_from`` (not resuming) leaves the generators
    alone.
    """

    # after every other hook, right before CheckpointHook (VERY_LOW, 90):
    # the states are gathered, and put back on resume, after the other hooks
    # of the same stage have drawn what they draw
    priority = 85
    KEY = 'rng_state'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None
        # every rank's state, gathered at the train iteration in [0]
        self._gathered: Optional[tuple] = None
        self._training = False
        self._before_val: Optional[dict] = None

    # saving -----------------------------------------------------------------
    def _gather_if_saving(self, runner, by_epoch: bool) -> None:
        """Collect every rank's state when a checkpoint is written now."""
        if get_world_size() == 1 or not self._saves_now(runner, by_epoch):
            return
        states = all_gather_object(_local_state())
        self._gathered = (runner.iter, states) if get_rank() == 0 else None

    @staticmethod
    def _saves_now(runner, by_epoch: bool) -> bool:
        for hook in getattr(runner, 'hooks', ()):
            if not isinstance(hook, CheckpointHook) or \
                    hook.by_epoch != by_epoch:
                continue
            if by_epoch:
                due = hook.every_n_epochs(runner, hook.interval,
                                          hook.save_begin)
                last = hook.is_last_train_epoch(runner)
            else:
                due = hook.every_n_train_iters(runner, hook.interval,
                                               hook.save_begin)
                last = hook.is_last_train_iter(runner)
            if due or (hook.save_last and last):
                return True
        return False

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self._gather_if_saving(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._gather_if_saving(runner, by_epoch=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # the states gathered at this train iteration serve every checkpoint
        # written before the next step (MMEngine writes the step's
        # checkpoint again after validation when the best score improves,
        # and the best checkpoint itself)
        gathered = None
        if self._gathered is not None and self._gathered[0] == runner.iter:
            gathered = list(self._gathered[1])
        if gathered is None:
            if get_world_size() > 1:
                # a checkpoint written outside the train loop's schedule
                # (e.g. a best checkpoint): rank 0's own state only, which a
                # distributed resume does not apply to every rank
                checkpoint[self.KEY] = dict(
                    world_size=get_world_size(),
                    ranks=[_local_state()] + [None] * (get_world_size() - 1))
            else:
                checkpoint[self.KEY] = _local_state()
            return
        # rank 0's entry taken now, as a single process takes it
        gathered[0] = _local_state()
        checkpoint[self.KEY] = dict(world_size=len(gathered), ranks=gathered)

    # validation inside training draws from a copy -------------------------
    def before_val(self, runner) -> None:
        if self._training:
            self._before_val = _local_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        state, self._before_val = self._before_val, None
        if state is not None:
            _set_local_state(state)

    def after_train(self, runner) -> None:
        self._training = False

    # resuming ---------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):
            self._pending = checkpoint.get(self.KEY)

    def before_train(self, runner) -> None:
        self._training = True
        state, self._pending = self._pending, None
        if state is None:
            return
        world_size, rank = get_world_size(), get_rank()
        if 'ranks' not in state:  # written by a single process
            saved = 1
            mine = state if world_size == 1 else None
        else:
            saved = state['world_size']
            mine = state['ranks'][rank] if saved == world_size else None
        if mine is None:
            print_log(
                f'RNGStateHook: the checkpoint holds the random states of '
                f'{saved} process(es), this run has {world_size}; rank '
                f'{rank} keeps its seeded generators, so the resumed run '
                'does not draw the same random numbers as an uninterrupted '
                'one.',
                logger='current',
                level=logging.WARNING)
            return
        _set_local_state(mine)
