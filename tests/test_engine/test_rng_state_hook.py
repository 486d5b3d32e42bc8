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
