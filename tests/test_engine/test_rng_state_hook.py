import random
from types import SimpleNamespace

import numpy as np
import torch

from mmsakd.engine import RNGStateHook


def _draw():
    return (random.random(), np.random.rand(), torch.rand(1).item())


def test_resume_continues_the_random_streams(tmp_path):
    hook = RNGStateHook()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = [_draw() for _ in range(3)]
    # the checkpoint survives a weights_only round trip
    torch.save(checkpoint, tmp_path / 'c.pth')
    checkpoint = torch.load(tmp_path / 'c.pth', weights_only=True)

    random.seed(0), np.random.seed(0), torch.manual_seed(0)  # a re-seed
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), checkpoint)
    hook.before_train(None)
    assert [_draw() for _ in range(3)] == expected


def test_load_from_without_resume_keeps_the_generators():
    hook = RNGStateHook()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    after_save = _draw()
    hook.after_load_checkpoint(SimpleNamespace(_resume=False), checkpoint)
    hook.before_train(None)
    assert _draw() != after_save


def test_old_checkpoint_without_state_is_fine():
    hook = RNGStateHook()
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), {})
    before = torch.get_rng_state()
    hook.before_train(None)
    assert torch.equal(torch.get_rng_state(), before)


def _as_rank(monkeypatch, rank, world_size=2):
    from mmsakd.engine.hooks import rng_state_hook
    monkeypatch.setattr(rng_state_hook, 'get_rank', lambda: rank)
    monkeypatch.setattr(rng_state_hook, 'get_world_size', lambda: world_size)


def _ranks_checkpoint():
    """A two-rank checkpoint: rank 1's generators ahead of rank 0's."""
    states = []
    for seed in (0, 1):
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        states.append(
            dict(
                python=random.getstate(),
                numpy=np.random.get_state(),
                torch=torch.get_rng_state()))
    return dict(rng_state=dict(world_size=2, ranks=states))


def test_each_rank_resumes_its_own_generators(monkeypatch):
    checkpoint = _ranks_checkpoint()
    draws = {}
    for rank in (0, 1):
        _as_rank(monkeypatch, rank)
        hook = RNGStateHook()
        hook.after_load_checkpoint(SimpleNamespace(_resume=True), checkpoint)
        hook.before_train(None)
        draws[rank] = _draw()
    for rank, seed in ((0, 0), (1, 1)):
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        assert draws[rank] == _draw()


def test_another_rank_count_keeps_the_seeded_generators(monkeypatch):
    _as_rank(monkeypatch, 0, world_size=4)
    hook = RNGStateHook()
    hook.after_load_checkpoint(
        SimpleNamespace(_resume=True), _ranks_checkpoint())
    torch.manual_seed(7)
    before = torch.get_rng_state()
    hook.before_train(None)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_ranks_gather_only_where_a_checkpoint_is_saved(monkeypatch):
    from mmengine.hooks import CheckpointHook

    from mmsakd.engine.hooks import rng_state_hook
    _as_rank(monkeypatch, 0)
    gathered = []
    monkeypatch.setattr(rng_state_hook, 'all_gather_object',
                        lambda state: gathered.append(state) or [state] * 2)
    runner = SimpleNamespace(
        hooks=[CheckpointHook(interval=2, save_last=False)],
        epoch=0,
        iter=0,
        max_epochs=4)
    hook = RNGStateHook()
    for epoch in range(4):
        runner.epoch = runner.iter = epoch  # one iteration an epoch
        hook.after_train_epoch(runner)
        hook.after_train_iter(runner, 0)  # an epoch-based hook: no gather
        checkpoint = {}
        hook.before_save_checkpoint(runner, checkpoint)
        if epoch in (1, 3):  # epochs 2 and 4 are saved
            assert checkpoint['rng_state']['ranks'][1] is not None
        else:  # e.g. a best checkpoint in between: rank 0's state only
            assert checkpoint['rng_state']['ranks'][1] is None
    assert len(gathered) == 2


def test_every_save_of_the_same_step_holds_every_rank(monkeypatch):
    """MMEngine writes a step's checkpoint again after validation when the
    best score improves (and the best checkpoint): each holds all ranks."""
    from mmengine.hooks import CheckpointHook

    from mmsakd.engine.hooks import rng_state_hook
    _as_rank(monkeypatch, 0)
    monkeypatch.setattr(rng_state_hook, 'all_gather_object',
                        lambda state: [state] * 2)
    runner = SimpleNamespace(
        hooks=[CheckpointHook(interval=1)], epoch=0, iter=2, max_epochs=4)
    hook = RNGStateHook()
    hook.after_train_epoch(runner)
    for _ in range(3):  # epoch_1.pth, best_*.pth, epoch_1.pth again
        checkpoint = {}
        hook.before_save_checkpoint(runner, checkpoint)
        assert all(s is not None for s in checkpoint['rng_state']['ranks'])
    runner.iter = 3  # the next step: nothing gathered for it
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint['rng_state']['ranks'][1] is None


def _seed_all(seed):
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)


def test_validation_inside_training_leaves_the_generators_alone():
    hook = RNGStateHook()
    hook.before_train(None)
    _seed_all(3)
    expected = _draw()
    _seed_all(3)
    hook.before_val(None)
    list(torch.utils.data.DataLoader(list(range(4))))  # draws a base seed
    _draw()
    hook.after_val_epoch(None, {})
    assert _draw() == expected
    # outside training (tools/test.py) validation is not touched
    hook.after_train(None)
    _seed_all(3)
    hook.before_val(None)
    _draw()
    hook.after_val_epoch(None, {})
    assert _draw() != expected
