import socket

import pytest
import torch

from tests.helpers import run_python

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(),
    reason='the patch is a no-op where CUDA is available')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# one-process "distributed" start exactly as mmengine's Runner does it
START_DDP = '''
import torch
from mmengine.dist import init_dist, get_world_size
from mmengine.model import MMDistributedDataParallel
init_dist('pytorch', backend='nccl')
print('backend', torch.distributed.get_backend(), 'world', get_world_size())
model = MMDistributedDataParallel(module=torch.nn.Linear(2, 2),
                                  device_ids=[0], broadcast_buffers=False)
print('wrapped', model.device_ids)
'''


def _env():
    return dict(
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(_free_port()))


@pytest.mark.slow
def test_stock_mmengine_cannot_start_ddp_without_cuda():
    result = run_python(START_DDP, env=_env())
    assert result.returncode != 0
    assert 'NVIDIA driver' in result.stderr or 'CUDA' in result.stderr


@pytest.mark.slow
def test_ddp_starts_on_cpu_with_gloo():
    result = run_python('import mmsakd\n' + START_DDP, env=_env())
    assert result.returncode == 0, result.stderr
    assert 'backend gloo world 1' in result.stdout
    assert 'wrapped None' in result.stdout
    assert 'uses "gloo" instead' in result.stderr  # the nccl -> gloo warning
