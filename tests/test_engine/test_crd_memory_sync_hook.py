"""CRD's memory bank stays identical on every DDP rank (gloo, CPU)."""
import os
import os.path as osp
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement

BANK = dict(neg_num=16, sample_n=48, dim_out=8)
# samples each of the two ranks contributes per step, as gates may select
# them: unequal counts, and a rank without any sample (it skips the loss)
SPLITS = [(3, 5), (0, 6), (4, 4), (6, 1), (2, 0)]


def global_batch(step):
    """The step's global batch: embeddings, distinct sample indices and
    contrast indices, identical in every process."""
    generator = torch.Generator().manual_seed(100 + step)
    size = sum(SPLITS[step])
    s = F.normalize(torch.randn(size, 8, generator=generator), dim=1)
    t = F.normalize(torch.randn(size, 8, generator=generator), dim=1)
    idx = torch.randperm(BANK['sample_n'], generator=generator)[:size]
    samples = [
        BaseDataElement(
            sample_idx=idx[i],
            contrast_sample_idxs=torch.cat([
                idx[i:i + 1],
                torch.randint(
                    BANK['sample_n'], (BANK['neg_num'], ), generator=generator)
            ])) for i in range(size)
    ]
    return s, t, samples


def build_loss():
    from mmsakd.models.losses import CRDLoss
    torch.manual_seed(0)  # the same initial bank in every process
    return CRDLoss(loss_weight=0.8, **BANK)


def train(loss, steps, rows, after_step):
    """Forward + backward of ``loss`` on ``rows(step)`` of each step's
    global batch (skipped when empty), then ``after_step()``."""
    for step in range(steps):
        s, t, samples = global_batch(step)
        keep = rows(step)
        if len(keep):
            s_in = s[keep].requires_grad_()
            loss(s_in, t[keep], [samples[i] for i in keep]).backward()
        after_step()


def _worker(rank, world, port, out_dir, sync):
    import torch.distributed as dist

    import mmsakd  # noqa: F401
    from mmsakd.engine import CRDMemorySyncHook
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=world)
    loss = build_loss()
    runner = SimpleNamespace(model=torch.nn.ModuleDict(dict(crd=loss)))
    hook = CRDMemorySyncHook()

    def rows(step):
        start = sum(SPLITS[step][:rank])
        return list(range(start, start + SPLITS[step][rank]))

    def after_step():
        if sync:
            hook.after_train_iter(runner, 0)
        else:  # MMRazor's behaviour: each rank updates with its own rows
            for entry in loss._pending:
                loss._update_memory(*entry[:3], 0.5)
            loss._pending.clear()

    train(loss, len(SPLITS), rows, after_step)
    state = {k: v.clone() for k, v in loss.state_dict().items()}
    # a second call without the hook in between fails loudly
    s, t, samples = global_batch(0)
    loss(s, t, samples)
    try:
        loss(s, t, samples)
        error = ''
    except RuntimeError as e:
        error = str(e)
    torch.save(
        dict(state=state, error=error), osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_ranks(tmp_path, sync=True):
    torch.multiprocessing.spawn(
        _worker, args=(2, _free_port(), str(tmp_path), sync), nprocs=2)
    return [
        torch.load(osp.join(tmp_path, f'rank{r}.pth'), weights_only=True)
        for r in range(2)
    ]


def one_process_banks():
    import mmsakd  # noqa: F401
    loss = build_loss()
    train(loss, len(SPLITS), lambda step: list(range(sum(SPLITS[step]))),
          lambda: None)
    return loss.state_dict()


def max_difference(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.slow
def test_banks_identical_across_ranks_and_equal_to_one_process(tmp_path):
    rank0, rank1 = run_ranks(tmp_path)
    reference = one_process_banks()
    for key in ('contrast.memory_v1', 'contrast.memory_v2', 'contrast.params'):
        assert torch.equal(rank0['state'][key], rank1['state'][key]), key
    assert max_difference(rank0['state'], rank1['state']) == 0
    # the banks are exactly the one-process banks; Z to float rounding
    for key in ('contrast.memory_v1', 'contrast.memory_v2'):
        assert torch.equal(rank0['state'][key], reference[key]), key
    assert torch.allclose(
        rank0['state']['contrast.params'],
        reference['contrast.params'],
        rtol=1e-6)
    assert not torch.equal(reference['contrast.memory_v1'],
                           build_loss().contrast.memory_v1)
    for result in (rank0, rank1):
        assert 'CRDMemorySyncHook' in result['error']
    banks = ('contrast.memory_v1', 'contrast.memory_v2')
    z_ours = rank0['state']['contrast.params'][2:4]
    z_ref = reference['contrast.params'][2:4]
    print('max |rank0 - rank1|:', max_difference(rank0['state'],
                                                 rank1['state']),
          '| max |bank(rank0) - bank(one process)|:',
          max_difference({k: rank0['state'][k]
                          for k in banks},
                         reference), '| max relative Z difference:',
          ((z_ours - z_ref).abs() / z_ref).max().item())


@pytest.mark.slow
def test_banks_drift_apart_with_per_rank_updates(tmp_path):
    """What the hook fixes: MMRazor's per-rank updates diverge."""
    rank0, rank1 = run_ranks(tmp_path, sync=False)
    assert not torch.equal(rank0['state']['contrast.memory_v1'],
                           rank1['state']['contrast.memory_v1'])


def test_hook_is_a_no_op_in_one_process():
    from mmsakd.engine import CRDMemorySyncHook
    loss = build_loss()
    s, t, samples = global_batch(0)
    loss(s, t, samples)
    after_forward = loss.contrast.memory_v1.clone()
    assert not torch.equal(after_forward, build_loss().contrast.memory_v1)
    CRDMemorySyncHook().after_train_iter(
        SimpleNamespace(model=torch.nn.Sequential(loss)), 0)
    assert torch.equal(loss.contrast.memory_v1, after_forward)
    assert os.environ.get('WORLD_SIZE') in (None, '1')
