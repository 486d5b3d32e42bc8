import json
import os.path as osp

import torch

from mmsakd.engine import SpotStatisticsHook
from tests.test_engine.toy_runner import toy_runner


def _files(work_dir):
    base = osp.join(work_dir, 'spot_statistics')
    with open(f'{base}.json') as f, open(f'{base}.csv') as g:
        return json.load(f), g.read()


def _train(work_dir, epochs, **kw):
    # 8 samples / 2 per batch = 4 iterations per epoch; windows of 3
    # iterations straddle the epochs (and the checkpoints)
    toy_runner(
        work_dir, [SpotStatisticsHook(interval=3)],
        rates=True,
        max_epochs=epochs,
        **kw).train()


def test_rows_are_read_from_the_outputs(tmp_path):
    _train(str(tmp_path), 1)
    rows, csv = _files(str(tmp_path))
    # samples x0 = i/8: neck when x0 > 0.5 (i = 5..7), logits when
    # x0 < 0.3 (i = 0..2); batches (0,1) (2,3) (4,5) (6,7)
    assert rows == [
        dict(kind='window', epoch=0, iter=3, neck=1 / 6, logits=3 / 6),
        dict(kind='epoch', epoch=1, iter=4, neck=3 / 8, logits=3 / 8),
    ]
    assert csv.splitlines()[0] == 'kind,epoch,iter,neck,logits'


def test_resume_writes_the_files_of_an_uninterrupted_run(tmp_path):
    straight = str(tmp_path / 'straight')
    _train(straight, 3)
    expected = _files(straight)
    assert [r['iter'] for r in expected[0]] == [3, 4, 6, 8, 9, 12, 12]

    # a run that wrote epoch 2 (rows and checkpoint) and is then resumed from
    # its epoch-1 checkpoint, as after a kill during epoch 2
    resumed = str(tmp_path / 'resumed')
    _train(resumed, 2)
    _train(resumed, 3, resume=True, load_from=osp.join(resumed, 'epoch_1.pth'))
    assert _files(resumed) == expected


def test_the_state_survives_a_weights_only_load(tmp_path):
    work_dir = str(tmp_path)
    _train(work_dir, 1)
    checkpoint = torch.load(
        osp.join(work_dir, 'epoch_1.pth'), weights_only=True)
    state = checkpoint['spot_statistics']
    assert state['names'] == ['neck', 'logits']
    assert len(state['rows']) == 2
    assert state['window_n'] == 2  # iteration 4 opened the next window


class _StoppedModel:
    """What a stale attribute would report: the hook must not read it."""
    last_gate_rates = torch.tensor([1.0, 1.0])
    spot_names = ['neck', 'logits']


def test_iterations_without_rates_count_nothing(tmp_path):
    """After MMRazor's StopDistillationHook the loss dict has no rates."""
    hook = SpotStatisticsHook(interval=1)
    runner = toy_runner(str(tmp_path), [hook], rates=False, max_epochs=1)
    runner.model.last_gate_rates = _StoppedModel.last_gate_rates
    runner.model.spot_names = _StoppedModel.spot_names
    runner.train()
    assert hook.rows == []
    assert not osp.exists(osp.join(str(tmp_path), 'spot_statistics.json'))
