import json

import pytest

from tests.helpers import run_tool


@pytest.mark.slow
def test_crd_loss_benchmark_times_both_losses_on_the_same_inputs(tmp_path):
    out = tmp_path / 'crd.json'
    result = run_tool([
        'tools/analysis/benchmark_crd_loss.py', '--batch', '8', '--neg-num',
        '64', '--sample-n', '256', '--dim', '16', '--repeats', '3', '--out',
        str(out)
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results['mmrazor_median_s'] > 0 and results['mmsakd_median_s'] > 0
    assert results['ratio'] == pytest.approx(results['mmrazor_median_s'] /
                                             results['mmsakd_median_s'])
    assert results['max_relative_loss_difference'] < 1e-5
    assert results['threads'] >= 1 and results['neg_num'] == 64
    assert 'ratio' in result.stdout


@pytest.mark.slow
def test_crd_loss_benchmark_rejects_a_batch_larger_than_the_bank():
    result = run_tool([
        'tools/analysis/benchmark_crd_loss.py', '--batch', '8', '--sample-n',
        '4'
    ])
    assert result.returncode != 0
    assert '--batch (8) must not exceed --sample-n (4)' in result.stderr
