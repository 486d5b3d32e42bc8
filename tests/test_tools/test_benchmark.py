import json
import os.path as osp
import statistics

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook, ProfilerHook

from tests.helpers import REPO, run_tool
from tests.test_engine.toy_runner import toy_runner
from tools.analysis import benchmark

A = f'{REPO}/configs/demo/resnet18-w32_digits.py'
B = f'{REPO}/configs/demo/resnet56_digits.py'


class FakeRuns:
    """Stands in for the training processes: each run's iteration times
    and worker statistics depend on the config and the run's position."""

    def __init__(self, seconds: dict, rss: dict):
        self.seconds, self.rss, self.calls = seconds, rss, []

    def __call__(self, config, args, profile=0):
        self.calls.append((config, profile))
        # the machine slows down run after run: a drift both configs share
        drift = 1 + 0.1 * len(self.calls)
        times = [self.seconds[config] * drift * f for f in (0.9, 1.0, 1.2)]
        stats = dict(
            threads=3,
            device='cpu',
            memory=dict(
                kind='peak_rss',
                peak_mib=self.rss[config],
                training_peak_mib=self.rss[config] - 100 * len(self.calls)))
        if profile:
            stats['profile'] = dict(iters=profile, tables={}, top_ops={})
        return times, stats


def test_benchmark_alternates_the_configs_and_reports_medians(
        tmp_path, monkeypatch):
    runs = FakeRuns({A: 0.2, B: 0.5}, {A: 600.0, B: 900.0})
    monkeypatch.setattr(benchmark, 'run_once', runs)
    out = tmp_path / 'bench.json'
    results = benchmark.main([
        A, B, '--iters', '4', '--warmup', '1', '--repeat', '3', '--memory',
        '--json',
        str(out)
    ])
    assert [c for c, _ in runs.calls] == [A, B, A, B, A, B]
    assert results == json.loads(out.read_text())
    assert results['threads'] == 3 and results['cpu_count'] >= 1
    assert results['order'] == [osp.relpath(c, REPO) for c in [A, B] * 3]
    a, b = (results['configs'][osp.relpath(c, REPO)] for c in (A, B))
    # medians over every run's post-warm-up iterations, ratio to the first
    drifts = {A: (1.1, 1.3, 1.5), B: (1.2, 1.4, 1.6)}
    for entry, config, seconds in ((a, A, 0.2), (b, B, 0.5)):
        times = [
            seconds * d * f for d in drifts[config] for f in (0.9, 1.0, 1.2)
        ]
        assert entry['n'] == 9
        assert entry['median_s_per_iter'] == pytest.approx(
            statistics.median(times))
        assert entry['run_medians_s'] == pytest.approx(
            [seconds * d for d in drifts[config]])
    assert a['ratio'] == 1.0
    assert b['ratio'] == pytest.approx(b['median_s_per_iter'] /
                                       a['median_s_per_iter'])
    assert b['round_ratios'] == pytest.approx(
        [2.5 * 1.2 / 1.1, 2.5 * 1.4 / 1.3, 2.5 * 1.6 / 1.5])
    # the largest peak of each config's runs, and its ratio to the first's
    assert b['memory'] == dict(
        kind='peak_rss',
        peak_mib=900.0,
        peak_mib_ratio=1.5,
        training_peak_mib=700.0,
        training_peak_mib_ratio=700.0 / 500.0)
    assert 'profile' not in a


def test_benchmark_profiles_in_extra_runs_that_are_not_timed(monkeypatch):
    runs = FakeRuns({A: 0.2, B: 0.5}, {A: 600.0, B: 900.0})
    monkeypatch.setattr(benchmark, 'run_once', runs)
    results = benchmark.main(
        [A, B, '--iters', '4', '--warmup', '1', '--repeat', '2', '--profile'])
    assert runs.calls == [(A, 0), (B, 0), (A, 0), (B, 0), (A, 5), (B, 5)]
    for config in (A, B):
        entry = results['configs'][osp.relpath(config, REPO)]
        assert entry['n'] == 6 and entry['profile']['iters'] == 5
        assert 'memory' not in entry  # only with --memory


def test_benchmark_pools_a_config_given_twice(monkeypatch):
    runs = FakeRuns({A: 0.2}, {A: 600.0})
    monkeypatch.setattr(benchmark, 'run_once', runs)
    results = benchmark.main([A, A, '--iters', '4', '--warmup', '1'])
    assert len(runs.calls) == 6
    (entry, ) = results['configs'].values()
    assert entry['n'] == 18 and entry['ratio'] == 1.0


def test_profile_summary_ranks_ops_by_self_time_per_iteration():
    x = torch.randn(256, 256)
    with torch.profiler.profile() as profiler:
        for _ in range(2):
            (x @ x).relu()
    summary = benchmark._profile_summary(profiler.key_averages(), 2, 5)
    (ops, ) = summary['top_ops'].values()
    times = [op['self_us_per_iter'] for op in ops]
    assert len(ops) == 5 and times == sorted(times, reverse=True)
    (mm, ) = [op for op in ops if op['name'] == 'aten::mm']
    assert mm['calls_per_iter'] == 1.0
    assert 'aten::mm' in summary['tables']['self_cpu_time_total']


def test_profiler_hook_profiles_the_iterations_after_the_warmup(
        tmp_path, monkeypatch):
    seen = {}

    def summary(events, iters, rows):
        seen.update(names={e.key for e in events}, iters=iters, rows=rows)
        return 'the summary'

    monkeypatch.setattr(benchmark, '_profile_summary', summary)

    class Mark(Hook):
        """Runs before the profiler steps (a higher priority)."""

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None):
            with torch.profiler.record_function(f'iteration_{runner.iter}'):
                torch.ones(1).add_(1)

    stats = {}
    hook = benchmark._profiler_hook(stats, 2, 3, 4)
    assert isinstance(hook, ProfilerHook)
    # one epoch (the hook stops at the end of an epoch; the benchmark's runs
    # are one, iteration-based) of 8 iterations: 2 of warm-up, 3 profiled
    toy_runner(str(tmp_path), hooks=[Mark(), hook], max_epochs=1, n=16).train()
    assert stats['profile'] == 'the summary'
    assert seen['iters'] == 3 and seen['rows'] == 4
    assert sorted(n for n in seen['names'] if n.startswith('iteration_')) \
        == ['iteration_2', 'iteration_3', 'iteration_4']


def test_peak_memory_is_reported_in_mib():
    before = benchmark._peak_memory(None)
    assert before['kind'] == 'peak_rss' and before['training_peak_mib'] is None
    # touched, hence resident: the peak becomes at least twice the old one
    block = np.ones(int(2 * before['peak_mib'] * 2**20) // 8)
    after = benchmark._peak_memory(None)['peak_mib']
    assert after >= 0.99 * block.nbytes / 2**20 >= 1.98 * before['peak_mib']
    block_mib = block.nbytes / 2**20
    del block
    peak_before_reset = benchmark._reset_peak_rss()
    if peak_before_reset is None:
        pytest.skip('this system cannot reset the peak resident memory')
    # the training peak starts again from what is resident now; the
    # process's peak is kept
    assert peak_before_reset == after
    reset = benchmark._peak_memory(peak_before_reset)
    assert reset['peak_mib'] == after
    assert reset['training_peak_mib'] < after - 0.9 * block_mib


def test_benchmark_rejects_bad_counts(capsys):
    for flag in ('--repeat', '--threads', '--nproc', '--calibrate-batches'):
        with pytest.raises(SystemExit):
            benchmark.parse_args([A, flag, '0'])
        assert f'{flag} must be >= 1, got 0' in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_measures_threads_memory_and_profile_of_real_runs(tmp_path):
    out = tmp_path / 'bench.json'
    result = run_tool([
        'tools/analysis/benchmark.py', A, '--iters', '3', '--warmup', '1',
        '--repeat', '1', '--batch-size', '8', '--threads', '1', '--memory',
        '--profile', '2', '--profile-rows', '4', '--json',
        str(out)
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results['threads'] == 1 and results['device'] == 'cpu'
    (entry, ) = results['configs'].values()
    assert entry['n'] == 2
    # a torch process holds more than 100 MiB
    memory = entry['memory']
    assert memory['kind'] == 'peak_rss' and memory['peak_mib'] > 100
    assert 100 < memory['training_peak_mib'] <= memory['peak_mib']
    profile = entry['profile']
    assert profile['iters'] == 2
    ops = profile['top_ops']['self_cpu_time_total']
    assert len(ops) == 4
    assert any('convolution' in op['name'] for op in ops)
    assert 'top ops by self_cpu_time' in result.stdout
    assert 'torch threads 1 of' in result.stdout


@pytest.mark.slow
def test_benchmark_reports_ratios_from_real_runs(tmp_path):
    out = tmp_path / 'bench.json'
    configs = [
        f'{REPO}/configs/demo/resnet18-w32_digits.py',
        f'{REPO}/configs/demo/resnet18-w32_digits.py'
    ]
    result = run_tool([
        'tools/analysis/benchmark.py', *configs, '--iters', '4', '--warmup',
        '1', '--repeat', '1', '--batch-size', '8', '--out',
        str(out)
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    # the same config twice: both runs pooled into one entry
    (entry, ) = results['configs'].values()
    assert entry['n'] == 2 * 3 and entry['median_s_per_iter'] > 0
    assert entry['ratio'] == 1.0


@pytest.mark.slow
def test_benchmark_rejects_bad_arguments():
    result = run_tool(['tools/analysis/benchmark.py', '--iters', '3'])
    assert result.returncode != 0 and 'at least one config' in result.stderr
    result = run_tool([
        'tools/analysis/benchmark.py', 'x.py', '--iters', '3', '--warmup', '3'
    ])
    assert result.returncode != 0 and '--iters must be larger' in result.stderr


@pytest.mark.slow
def test_benchmark_resolves_configs_from_the_callers_directory(tmp_path):
    # a path relative to the caller's directory, not the repository's
    result = run_tool([
        f'{REPO}/tools/analysis/benchmark.py',
        'configs/demo/resnet18-w32_digits.py', '--iters', '3', '--warmup', '1',
        '--repeat', '1', '--batch-size', '8'
    ],
                      cwd=str(tmp_path))
    assert result.returncode != 0
    assert "config '" + str(tmp_path) + \
        "/configs/demo/resnet18-w32_digits.py' does not exist" in \
        result.stderr
    (tmp_path / 'configs').symlink_to(f'{REPO}/configs')
    result = run_tool([
        f'{REPO}/tools/analysis/benchmark.py',
        'configs/demo/resnet18-w32_digits.py', '--iters', '3', '--warmup', '1',
        '--repeat', '1', '--batch-size', '8'
    ],
                      cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]


def test_benchmark_reports_train_step_times_next_to_iteration_times(
        monkeypatch):
    runs = FakeRuns({A: 0.2, B: 0.5}, {A: 600.0, B: 900.0})

    def with_steps(config, args, profile=0):
        times, stats = runs(config, args, profile)
        # the step alone: the iteration less 0.1 s of data and hooks
        stats['step_times'] = [t - 0.1 for t in times]
        return times, stats

    monkeypatch.setattr(benchmark, 'run_once', with_steps)
    results = benchmark.main(
        [A, B, '--iters', '4', '--warmup', '1', '--repeat', '2'])
    a, b = (results['configs'][osp.relpath(c, REPO)] for c in (A, B))
    for entry in (a, b):
        assert entry['n_steps'] == 6
        assert entry['median_s_per_step'] == pytest.approx(
            entry['median_s_per_iter'] - 0.1)
    assert a['step_ratio'] == 1.0
    assert b['step_ratio'] == pytest.approx(b['median_s_per_step'] /
                                            a['median_s_per_step'])
    assert b['step_ratio'] > b['ratio']  # the shared 0.1 s is left out


def test_calibrate_bn_averages_the_batch_statistics_and_restores_modes():

    class Net(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm2d(3)

        def forward(self, x, mode='tensor'):
            return self.bn(x)

    net = Net().eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 2, 2, generator=g) * 3 + 5 for _ in '123']
    # the first 8 samples: the third batch is left out
    assert benchmark._calibrate_bn(net, iter(batches), 8) == 1
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches[:2]])
    variances = torch.stack([b.var(dim=(0, 2, 3)) for b in batches[:2]])
    assert torch.allclose(net.bn.running_mean, means.mean(0))
    assert torch.allclose(net.bn.running_var, variances.mean(0))
    assert net.bn.momentum == 0.1 and not net.training
    assert not net.bn.training


def test_label_with_puts_the_teachers_predictions_in_the_batch():
    from mmpretrain.structures import DataSample

    def teacher(inputs, mode):
        assert mode == 'tensor'
        return torch.nn.functional.one_hot(inputs.long().view(-1) % 10, 10)

    data = dict(
        inputs=[torch.tensor([13.]), torch.tensor([4.])],
        data_samples=[DataSample().set_gt_label(0) for _ in range(2)])
    benchmark._label_with(
        teacher, lambda d, training: dict(inputs=torch.stack(d['inputs'])),
        data)
    assert [int(s.gt_label) for s in data['data_samples']] == [3, 4]


@pytest.mark.slow
def test_benchmark_labels_batches_with_the_teacher_in_real_runs(tmp_path):
    out = tmp_path / 'bench.json'
    kd = f'{REPO}/configs/demo/kd-fitnet_r18w32-r18w16_digits.py'
    result = run_tool([
        'tools/analysis/benchmark.py', kd, '--iters', '3', '--warmup', '1',
        '--repeat', '1', '--batch-size', '8', '--teacher-labels',
        '--calibrate-batches', '2', '--json',
        str(out), '--cfg-options', 'model.teacher_ckpt=None'
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results['teacher_labels'] is True
    (entry, ) = results['configs'].values()
    assert entry['n_steps'] == 2
    # the labelling pass is in the iteration, not in the step
    assert 0 < entry['median_s_per_step'] < entry['median_s_per_iter']
    assert 'labelled by the teacher' in result.stdout
    result = run_tool([
        'tools/analysis/benchmark.py', A, '--iters', '3', '--warmup', '1',
        '--repeat', '1', '--batch-size', '8', '--teacher-labels'
    ])
    assert result.returncode != 0
    assert '--teacher-labels needs a distillation config' in result.stderr
