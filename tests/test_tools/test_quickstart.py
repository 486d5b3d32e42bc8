"""The README's main job, ``tools/quickstart.sh``, in its ``QUICK=1`` form:
the whole pipeline (teacher, student alone, baseline, SAKD, the summary with
its figures, the exported student) on the digits that ship with
scikit-learn."""
import json
import os.path as osp
import re
import sys

import pytest

from tests.helpers import run_tool


@pytest.mark.slow
def test_quick_main_job_ends_with_the_side_by_side_summary(tmp_path):
    work = tmp_path / 'demo'
    venv = osp.dirname(osp.dirname(sys.executable))
    result = run_tool(['tools/quickstart.sh'],
                      env=dict(QUICK='1', WORK=str(work), VENV=venv),
                      timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]

    summary = json.loads((work / 'summary.json').read_text())
    rows = {r['method']: r for r in summary['rows']}
    assert list(rows) == ['teacher', 'student', 'baseline', 'sakd']
    assert summary['seeds'] == [0]
    assert summary['schedule'] == dict(
        epochs=1, teacher_epochs=4, options=summary['schedule']['options'])
    # a teacher that learned: far above the 10 % of chance on ten digits
    assert rows['teacher']['top1_mean'] >= 50
    for method in ('student', 'baseline', 'sakd'):
        (run, ) = rows[method]['runs']
        assert run['seed'] == 0 and run['epoch'] == 1
        assert 0 <= run['top1'] <= 100 and run['time_per_iter_s'] > 0
    # the distillation runs read the trained teacher
    assert rows['sakd']['runs'][0]['teacher_top1'] == \
        rows['teacher']['top1_mean']

    text = (work / 'summary.md').read_text()
    for label in ('teacher', 'student alone', 'baseline', 'SAKD'):
        assert re.search(
            rf'^\| {label} \| `[^`]+` \| \d+\.\d\d \| 1 \| '
            rf'[\d.]+ \| \d\.\d{{3}} \|$', text, re.M), label
    assert '## Where SAKD distilled' in text
    for name in ('spot_rates.png', 'spot_heatmap.png'):
        assert f']({name})' in text
        assert (work / name).stat().st_size > 1000
    # the job ends with the written table, after the exported student
    tail = result.stdout[result.stdout.index('== the spot-adaptive student'):]
    assert text in tail
    assert tail.rstrip().endswith('spot_rates.png, spot_heatmap.png)')
    # the exported student, evaluated alone, scores what SAKD scored
    assert (work / 'sakd' / 'seed_0' / 'student_epoch_1.pth').is_file()
    top1 = float(re.search(r'^accuracy/top1: ([\d.]+)$', tail, re.M).group(1))
    assert top1 == pytest.approx(rows['sakd']['top1_mean'], abs=0.01)
