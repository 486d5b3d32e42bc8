import json

import pytest

from tests.helpers import REPO, run_tool

# they train end to end or launch subprocesses
pytestmark = pytest.mark.slow


def test_benchmark_reports_ratios_from_real_runs(tmp_path):
    out = tmp_path / 'bench.json'
    configs = [
        f'{REPO}/configs/demo/resnet18-w32_digits.py',
        f'{REPO}/configs/demo/resnet18-w32_digits.py'
    ]
    result = run_tool([
        'tools/analysis/benchmark.py', *configs, '--iters', '4', '--warmup',
        '1', '--batch-size', '8', '--out',
        str(out)
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    # the same config twice: both runs pooled into one entry
    (entry, ) = results.values()
    assert entry['n'] == 2 * 3 and entry['median_s_per_iter'] > 0
    assert entry['ratio'] == 1.0


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
        '--batch-size', '8'
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
        '--batch-size', '8'
    ],
                      cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
