import io
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

from mmsakd.compat import restricted_getattr
from tests.helpers import run_python


def _runner_like_checkpoint(path):
    hub = MessageHub.get_instance('test_compat_checkpoint')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/lr', np.float64(0.05))
    torch.save(
        {
            'meta': {
                'epoch': 1,
                'iter': 8,
                'seed': np.int64(1029)
            },
            'state_dict': {
                'w': torch.ones(3)
            },
            'message_hub': hub.state_dict(),
        }, path)


class _RunsCode:

    def __reduce__(self):
        return (os.system, ('echo compromised', ))


@pytest.mark.slow
def test_unpatched_torch_refuses_runner_checkpoints(tmp_path):
    """Documents why the allow-list exists (torch >= 2.6 default)."""
    path = str(tmp_path / 'ckpt.pth')
    _runner_like_checkpoint(path)
    result = run_python('import torch, mmengine.logging\n'
                        f'torch.load({path!r})')
    assert result.returncode != 0
    assert 'Unsupported global' in result.stderr


def test_runner_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _runner_like_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(1.5)
    assert ckpt['meta']['seed'] == 1029
    # and through mmengine's own loader (resume, load_from, teacher_ckpt)
    assert torch.equal(
        _load_checkpoint(path)['state_dict']['w'], torch.ones(3))


def test_code_running_checkpoint_still_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _RunsCode()}, path)
    with pytest.raises(pickle.UnpicklingError, match='os.system|posix'):
        _load_checkpoint(path)


def test_getattr_is_restricted_to_history_buffer_methods():
    assert restricted_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    refused = ((HistoryBuffer, '__init__'), (HistoryBuffer,
                                             '_set_default_statistics'),
               (np.ndarray, 'tofile'), (os, 'system'))
    for owner, name in refused:
        with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
            restricted_getattr(owner, name)


def test_getattr_in_pickle_cannot_reach_other_objects(tmp_path):

    class _GetattrOs:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    buf = io.BytesIO()
    torch.save({'x': _GetattrOs()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        torch.load(buf, weights_only=True)
