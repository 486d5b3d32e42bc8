import socket
import textwrap

import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.models.architectures.connectors import Paraphraser

from mmsakd.models.connectors import FactorParaphraser
from mmsakd.registry import MODELS
from tests.helpers import run_python


def test_fixed_in_train_phase_trainable_in_pretrain():
    fixed = FactorParaphraser(8, 4, phase='train')
    assert not any(p.requires_grad for p in fixed.parameters())
    pretrain = FactorParaphraser(8, 4, phase='pretrain')
    assert all(p.requires_grad for p in pretrain.parameters())
    x = torch.randn(2, 8, 4, 4)
    pretrain(x).pow(2).mean().backward()
    assert all(p.grad is not None for p in pretrain.parameters())


@pytest.mark.parametrize('phase', ['pretrain', 'train'])
@pytest.mark.parametrize('use_bn', [False, True])
def test_same_module_and_outputs_as_mmrazor(phase, use_bn):
    ours = FactorParaphraser(8, 4, phase=phase, use_bn=use_bn).eval()
    theirs = Paraphraser(8, 4, phase=phase, use_bn=use_bn).eval()
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 8, 4, 4)
    out = ours(x)
    assert out.shape == ((2, 4, 4, 4) if phase == 'train' else x.shape)
    assert torch.equal(out, theirs(x))


def test_build_from_registry():
    with DefaultScope.overwrite_default_scope('mmsakd'):
        module = MODELS.build(
            dict(
                type='mmsakd.FactorParaphraser',
                in_channel=64,
                out_channel=32,
                phase='train'))
    assert isinstance(module, FactorParaphraser) and module.phase == 'train'
    assert module.encoder[3].out_channels == 32


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize('cls,works', [('FactorParaphraser', True),
                                       ('Paraphraser', False)])
def test_ddp_training_with_a_fixed_paraphraser(cls, works):
    code = textwrap.dedent('''
        import os
        import torch
        import torch.distributed as dist
        from torch import nn
        import mmsakd  # noqa: F401
        from mmrazor.models.architectures.connectors import Paraphraser
        from mmsakd.models.connectors import FactorParaphraser


        class Student(nn.Module):

            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(8, 4, 1)
                self.t_factor = {cls}(8, 4, phase='train')

            def forward(self, x):
                return (self.conv(x) - self.t_factor(x)).abs().mean()


        os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='{port}')
        dist.init_process_group('gloo', rank=0, world_size=1)
        ddp = nn.parallel.DistributedDataParallel(Student())
        for _ in range(3):
            ddp(torch.randn(2, 8, 4, 4)).backward()
        print('three steps')
    ''').format(
        cls=cls, port=free_port())
    result = run_python(code, timeout=300)
    assert ('three steps' in result.stdout) is works, result.stderr[-2000:]
    if not works:
        assert 'Expected to have finished reduction' in result.stderr
