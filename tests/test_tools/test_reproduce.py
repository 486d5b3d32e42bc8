import json
import os
import os.path as osp

import pytest

from tests.helpers import REPO, run_tool
from tools.analysis import reproduce as tool

# the offline digits demo, as tools/quickstart.sh runs it
DEMO = [
    '--teacher-config', 'configs/demo/resnet56_digits.py', '--student-config',
    'configs/demo/resnet20_digits.py', '--baseline-config',
    'configs/demo/crd_res56_res20_baseline_digits.py', '--sakd-config',
    'configs/demo/crd_res56_res20_digits.py', '--methods', 'student',
    'baseline', 'sakd'
]
# one epoch per run on 128 training and 64 test digits; the CRD memory bank
# and negatives sized for the 128 images (about 115 negatives per class)
TINY = [
    '--epochs', '1', '--teacher-epochs', '1', '--run-options', 'teacher',
    'train_dataloader.dataset.indices=128',
    'val_dataloader.dataset.indices=64', '--run-options', 'student',
    'train_dataloader.dataset.indices=128',
    'val_dataloader.dataset.indices=64', '--run-options', 'distill',
    'train_dataloader.dataset.dataset.indices=128',
    'train_dataloader.dataset.neg_num=64',
    'model.distiller.distill_losses.loss_crd.neg_num=64',
    'model.distiller.distill_losses.loss_crd.sample_n=128',
    'val_dataloader.dataset.indices=64'
]


def _write_scalars(work_dir, launch, rows):
    folder = osp.join(work_dir, launch, 'vis_data')
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        for row in rows:
            f.write(json.dumps(row) + '\n')


def _train(epoch, time):
    return dict(lr=0.05, loss=1.0, time=time, epoch=epoch, step=10 * epoch)


def _val(epoch, top1, teacher=None):
    row = {'accuracy/top1': top1, 'accuracy/top5': 99.0, 'time': 9.0}
    if teacher is not None:
        row['teacher.accuracy/top1'] = teacher
    row['step'] = epoch
    return row


def test_read_run_takes_the_last_validation_across_resumed_launches(tmp_path):
    wd = str(tmp_path)
    _write_scalars(
        wd, '20260101_000000',
        [_train(1, 0.1), _val(1, 10.0),
         _train(2, 0.3)])
    # the resumed launch, and a cut last line from a killed process
    _write_scalars(wd, '20260101_010000', [
        _train(2, 0.2),
        _val(2, 20.0, 70.0),
        _train(3, 0.5),
        _val(3, 30.0, 71.0)
    ])
    with open(
            osp.join(wd, '20260101_010000', 'vis_data', 'scalars.json'),
            'a') as f:
        f.write('{"accuracy/top1": 5')
    run = tool.read_run(wd, max_epochs=3)
    assert run['top1'] == 30.0 and run['epoch'] == 3
    assert run['teacher_top1'] == 71.0 and run['top5'] == 99.0
    # the median of the training rows only (validation times left out)
    assert run['time_per_iter_s'] == pytest.approx(0.25)


def test_read_run_errors_name_the_work_dir_and_the_fix(tmp_path):
    wd = str(tmp_path)
    with pytest.raises(FileNotFoundError, match='logged nothing'):
        tool.read_run(wd)
    _write_scalars(wd, '20260101_000000', [_train(1, 0.1)])
    with pytest.raises(ValueError, match='never validated'):
        tool.read_run(wd)
    _write_scalars(wd, '20260101_000000', [_train(1, 0.1), _val(1, 10.0)])
    with pytest.raises(ValueError, match='epoch 1, not of the last epoch 2'):
        tool.read_run(wd, max_epochs=2)


def test_schedule_scales_the_milestones_with_the_epochs():
    cfg = tool._load(f'{REPO}/configs/vanilla/resnet20_cifar100.py')
    assert tool.schedule_options(cfg, None) == []
    assert tool.schedule_options(cfg, 240) == []
    assert tool.schedule_options(cfg, 60) == [
        'train_cfg.max_epochs=60', 'param_scheduler.milestones=[38,45,52]'
    ]


def test_data_root_reaches_wrapped_datasets_only_where_they_read_one():
    cfg = tool._load(f'{REPO}/configs/baselines/crd_res56_res20.py')
    options = tool.data_options(cfg, '/data/c100', True)
    assert 'train_dataloader.dataset.dataset.data_root=/data/c100' in options
    assert 'train_dataloader.dataset.dataset.verify_checksum=False' in options
    assert 'val_dataloader.dataset.data_root=/data/c100' in options
    # the CRD wrapper has no data_root of its own
    assert not any(
        o.startswith('train_dataloader.dataset.data_root') for o in options)
    demo = tool._load(f'{REPO}/configs/demo/resnet20_digits.py')
    assert tool.data_options(demo, '/data/c100', True) == []


def test_plan_derives_teacher_and_student_from_the_baseline(tmp_path):
    args = tool.parse_args([
        '--distiller', 'crd', '--pair', 'res56_res20', '--methods', 'student',
        'baseline', 'sakd', '--seeds', '3', '4', '--epochs', '60', '--out',
        str(tmp_path)
    ])
    pipeline = tool.Pipeline(args)
    assert pipeline.configs == dict(
        teacher=f'{REPO}/configs/vanilla/resnet56_cifar100.py',
        student=f'{REPO}/configs/vanilla/resnet20_cifar100.py',
        baseline=f'{REPO}/configs/baselines/crd_res56_res20.py',
        sakd=f'{REPO}/configs/sakd/crd_res56_res20.py')
    plan = pipeline.plan()
    assert [(k, s) for k, s, _ in plan] == [('teacher', 3), ('student', 3),
                                            ('baseline', 3), ('sakd', 3),
                                            ('student', 4), ('baseline', 4),
                                            ('sakd', 4)]
    kind, seed, work_dir = plan[-1]
    cmd = pipeline.command(kind, work_dir, seed, pipeline.teacher_ckpt())
    assert cmd[2] == f'{REPO}/configs/sakd/crd_res56_res20.py'
    assert cmd[4] == f'{tmp_path}/sakd/seed_4'
    assert 'randomness.seed=4' in cmd
    assert f'model.teacher_ckpt={tmp_path}/teacher/epoch_60.pth' in cmd
    assert 'param_scheduler.milestones=[38,45,52]' in cmd


def test_a_given_teacher_checkpoint_replaces_the_teacher_run(tmp_path):
    ckpt = tmp_path / 'teacher.pth'
    ckpt.write_bytes(b'')
    args = tool.parse_args([
        '--distiller', 'at', '--pair', 'res56_res20', '--teacher-ckpt',
        str(ckpt), '--seeds', '0', '--out',
        str(tmp_path)
    ])
    pipeline = tool.Pipeline(args)
    assert [k for k, _, _ in pipeline.plan()] == ['baseline', 'sakd']
    assert pipeline.teacher_ckpt() == str(ckpt)


def _summary(rows: list, **extra) -> dict:
    """A summary as the pipeline writes it, two seeds, around ``rows``."""
    return dict(
        title='crd, res56 -> res20',
        data='train: mmsakd.CIFAR100',
        schedule=dict(epochs=60, teacher_epochs=60),
        seeds=[0, 1],
        machine='CPU (2 cores)',
        rows=rows,
        **extra)


def test_summary_table_shows_mean_and_sample_std():
    runs = [dict(seed=s, top1=t) for s, t in ((0, 70.0), (1, 72.0))]
    summary = _summary([
        dict(
            label='SAKD',
            config='configs/sakd/crd_res56_res20.py',
            checkpoint=None,
            runs=runs,
            time_per_iter_s=0.1234,
            **tool._stats([70.0, 72.0])),
        dict(
            label='teacher',
            config=None,
            checkpoint='t.pth',
            runs=[],
            **tool._stats([]))
    ])
    text = tool.format_markdown(summary)
    assert '| SAKD | `configs/sakd/crd_res56_res20.py` | 71.00 ± 1.41 | 2 ' \
           '| 70.00, 72.00 | 0.123 |' in text
    assert '| teacher | `t.pth` | - | 0 |  | - |' in text
    assert '60 epochs (teacher 60)' in text


def test_summary_shows_where_sakd_distilled():
    runs = [
        dict(
            seed=s,
            top1=70.0,
            spot_rates={
                'backbone.layer3': r,
                'logits': 1.0
            }) for s, r in ((0, 0.5), (1, 0.25))
    ]
    summary = _summary([
        dict(
            method='sakd',
            label='SAKD',
            config='c.py',
            checkpoint=None,
            runs=runs,
            **tool._stats([70.0, 70.0]))
    ],
                       figures=['spot_rates.png'])
    text = tool.format_markdown(summary)
    assert '| spot | seed 0 | seed 1 |' in text
    assert '| `backbone.layer3` | 0.50 | 0.25 |' in text
    assert '| `logits` | 1.00 | 1.00 |' in text
    assert '![spot_rates](spot_rates.png)' in text
    # no spot-adaptive run, no section
    summary['rows'][0]['method'] = 'baseline'
    assert 'Where SAKD' not in tool.format_markdown(summary)


def test_last_spot_rates_reads_the_last_epoch_row(tmp_path):
    rows = [
        dict(kind='window', epoch=1, iter=2, a=0.1, logits=0.2),
        dict(kind='epoch', epoch=1, iter=4, a=0.3, logits=0.4),
        dict(kind='window', epoch=2, iter=6, a=0.9, logits=0.9),
        dict(kind='epoch', epoch=2, iter=8, a=0.5, logits=0.6),
    ]
    (tmp_path / 'spot_statistics.json').write_text(json.dumps(rows))
    assert tool.last_spot_rates(str(tmp_path)) == dict(a=0.5, logits=0.6)
    assert tool.last_spot_rates(str(tmp_path / 'none')) is None


@pytest.mark.parametrize('argv, error', [
    (['--distiller', 'crd'], '--distiller and --pair go together'),
    ([], 'name the configs'),
    (DEMO + ['--run-options', 'teachr', 'a=1'], 'RUN one of teacher'),
    (DEMO + ['--seeds', '0', '0'], '--seeds [0, 0]: each seed once'),
    (DEMO + ['--cfg-options', 'novalue'], "'novalue': expected KEY=VALUE"),
    (DEMO[:-4], '--out: the folder of the runs'),
])
def test_arguments_are_checked_before_anything_runs(tmp_path, capsys, argv,
                                                    error):
    out = [] if argv == DEMO[:-4] else ['--out', str(tmp_path)]
    with pytest.raises(SystemExit):
        tool.parse_args(argv + out)
    assert error in capsys.readouterr().err


def test_run_options_of_distill_reach_baseline_and_sakd(tmp_path):
    args = tool.parse_args(
        DEMO + ['--run-options', 'distill', 'a=1', '--out',
                str(tmp_path)])
    assert args.run_options == dict(baseline=['a=1'], sakd=['a=1'])


def test_a_work_dir_with_other_settings_is_refused(tmp_path):
    args = tool.parse_args(DEMO + ['--out', str(tmp_path)])
    pipeline = tool.Pipeline(args)
    work_dir = tmp_path / 'teacher'
    work_dir.mkdir()
    (work_dir / 'reproduce_command.json').write_text('["other"]')
    with pytest.raises(RuntimeError, match='with other settings'):
        pipeline.train('teacher', 0, str(work_dir))


def test_an_interrupted_run_is_resumed_and_a_failed_one_shows_its_log(
        tmp_path, monkeypatch):
    args = tool.parse_args(DEMO + ['--epochs', '1', '--out', str(tmp_path)])
    pipeline = tool.Pipeline(args)
    work_dir = tmp_path / 'student' / 'seed_0'
    work_dir.mkdir(parents=True)
    cmd = pipeline.command('student', str(work_dir), 0,
                           pipeline.teacher_ckpt())
    (work_dir / 'reproduce_command.json').write_text(json.dumps(cmd[2:]))
    (work_dir / 'last_checkpoint').write_text('epoch_0.pth')
    seen = []

    def fake_train(cmd, cwd, stdout, stderr):
        seen.append(cmd)
        _write_scalars(
            str(work_dir), '20260101_000000',
            [_train(1, 0.2), _val(1, 42.0)])
        return tool.subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(tool.subprocess, 'run', fake_train)
    run = pipeline.train('student', 0, str(work_dir))
    assert seen[0][-1] == '--resume' and run['top1'] == 42.0
    # finished: the next call reuses the result without training
    assert pipeline.train('student', 0, str(work_dir))['top1'] == 42.0
    assert len(seen) == 1

    def failing_train(cmd, cwd, stdout, stderr):
        stdout.write('ValueError: something broke\n')
        return tool.subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(tool.subprocess, 'run', failing_train)
    with pytest.raises(
            RuntimeError,
            match='(?s)student seed 1 failed '
            r'\(exit 1\).*something broke'):
        pipeline.train('student', 1, str(tmp_path / 'student' / 'seed_1'))


def _student_pipeline(tmp_path, epochs=1):
    """A pipeline of one run, the student alone for ``epochs`` epochs, and
    its work dir holding the command it was started with."""
    teacher = tmp_path / 'teacher.pth'
    teacher.write_bytes(b'')
    args = tool.parse_args(DEMO[:-4] + [
        '--methods', 'student', '--seeds', '0', '--epochs',
        str(epochs), '--teacher-ckpt',
        str(teacher), '--no-print', '--out',
        str(tmp_path / 'out')
    ])
    pipeline = tool.Pipeline(args)
    work_dir = tmp_path / 'out' / 'student' / 'seed_0'
    work_dir.mkdir(parents=True)
    cmd = pipeline.command('student', str(work_dir), 0, str(teacher))
    (work_dir / 'reproduce_command.json').write_text(json.dumps(cmd[2:]))
    return pipeline, work_dir


def _no_training(*args, **kwargs):
    raise AssertionError('the run was trained again')


def test_a_cached_result_the_logs_contradict_is_rewritten_from_them(
        tmp_path, monkeypatch, capsys):
    pipeline, work_dir = _student_pipeline(tmp_path)
    _write_scalars(
        str(work_dir), '20260101_000000',
        [_train(1, 0.2), _val(1, 3.1)])
    done = work_dir / 'reproduce_result.json'
    cached = tool.read_run(str(work_dir), 1)
    done.write_text(json.dumps({**cached, 'top1': 99.9, 'wall_s': 5.0}))
    monkeypatch.setattr(tool.subprocess, 'run', _no_training)
    summary = pipeline.run()
    (row, ) = [r for r in summary['rows'] if r['method'] == 'student']
    assert [r['top1'] for r in row['runs']] == [3.1]
    assert row['top1_mean'] == 3.1
    saved = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert saved['rows'] == summary['rows']
    err = capsys.readouterr().err
    assert f'warning: {done} disagrees with the metrics the run logged' in err
    assert 'top1 99.9 cached, 3.1 logged' in err
    assert json.loads(done.read_text()) == cached
    # rewritten: the next time it is used as it is
    assert pipeline.train('student', 0, str(work_dir)) == cached
    assert 'warning' not in capsys.readouterr().err


@pytest.mark.parametrize('content', ['{"top1": 99', '[99.9]'])
def test_a_cached_result_that_is_not_one_is_rewritten_from_the_logs(
        tmp_path, monkeypatch, capsys, content):
    pipeline, work_dir = _student_pipeline(tmp_path)
    _write_scalars(
        str(work_dir), '20260101_000000',
        [_train(1, 0.2), _val(1, 3.1)])
    done = work_dir / 'reproduce_result.json'
    done.write_text(content)
    monkeypatch.setattr(tool.subprocess, 'run', _no_training)
    assert pipeline.train('student', 0, str(work_dir))['top1'] == 3.1
    err = capsys.readouterr().err
    assert f'{done} disagrees' in err and 'it is not a result' in err
    assert json.loads(done.read_text())['top1'] == 3.1


def test_a_cached_result_the_logs_confirm_is_used(tmp_path, monkeypatch,
                                                  capsys):
    pipeline, work_dir = _student_pipeline(tmp_path)
    _write_scalars(
        str(work_dir), '20260101_000000',
        [_train(1, 0.2), _val(1, 3.1, 80.0)])
    done = work_dir / 'reproduce_result.json'
    cached = {**tool.read_run(str(work_dir), 1), 'wall_s': 5.0}
    done.write_text(json.dumps(cached))
    monkeypatch.setattr(tool.subprocess, 'run', _no_training)
    assert pipeline.train('student', 0, str(work_dir)) == cached
    assert capsys.readouterr().err == ''
    assert json.loads(done.read_text()) == cached


@pytest.mark.parametrize('logged, reason', [
    ([], 'logged nothing'),
    ([_train(1, 0.2)], 'never validated'),
])
def test_a_cached_result_without_logs_to_check_it_is_ignored(
        tmp_path, monkeypatch, capsys, logged, reason):
    pipeline, work_dir = _student_pipeline(tmp_path, epochs=2)
    if logged:
        _write_scalars(str(work_dir), '20260101_000000', logged)
    (work_dir / 'last_checkpoint').write_text('epoch_1.pth')
    done = work_dir / 'reproduce_result.json'
    done.write_text(json.dumps(dict(top1=99.9, epoch=2)))
    seen = []

    def fake_train(cmd, cwd, stdout, stderr):
        seen.append(cmd)
        _write_scalars(
            str(work_dir), '20260101_010000',
            [_train(2, 0.2), _val(2, 3.1)])
        return tool.subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(tool.subprocess, 'run', fake_train)
    run = pipeline.train('student', 0, str(work_dir))
    assert run['top1'] == 3.1 and seen[0][-1] == '--resume'
    err = capsys.readouterr().err
    assert f'warning: {done} is ignored: the run has no complete logs' in err
    assert reason in err
    assert json.loads(done.read_text())['top1'] == 3.1


@pytest.mark.slow
def test_run_as_a_file_it_imports_the_other_tools_as_the_tools_package(
        tmp_path):
    # a finished spot-adaptive run is reused, its spot rates read and drawn
    # by tools.analysis.plot_spots; no PYTHONPATH names the repository
    teacher = tmp_path / 'teacher.pth'
    teacher.write_bytes(b'')
    argv = DEMO[:-4] + [
        '--methods', 'sakd', '--seeds', '0', '--epochs', '1', '--teacher-ckpt',
        str(teacher), '--out',
        str(tmp_path / 'out')
    ]
    pipeline = tool.Pipeline(tool.parse_args(argv))
    work_dir = tmp_path / 'out' / 'sakd' / 'seed_0'
    work_dir.mkdir(parents=True)
    cmd = pipeline.command('sakd', str(work_dir), 0, str(teacher))
    (work_dir / 'reproduce_command.json').write_text(json.dumps(cmd[2:]))
    _write_scalars(
        str(work_dir), '20260101_000000',
        [_train(1, 0.1), _val(1, 50.0, 90.0)])
    (work_dir / 'reproduce_result.json').write_text(
        json.dumps(tool.read_run(str(work_dir), 1)))
    (work_dir / 'spot_statistics.json').write_text(
        json.dumps([
            dict(kind='window', epoch=1, iter=1, a=0.5, logits=1.0),
            dict(kind='epoch', epoch=1, iter=2, a=0.25, logits=1.0)
        ]))
    result = run_tool(['tools/analysis/reproduce.py', *argv],
                      env=dict(PYTHONPATH=''))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    (sakd, ) = [r for r in summary['rows'] if r['method'] == 'sakd']
    assert sakd['runs'][0]['spot_rates'] == dict(a=0.25, logits=1.0)
    assert 'spot_rates.png' in summary['figures']


@pytest.mark.slow
def test_the_pipeline_runs_end_to_end_on_the_demo(tmp_path):
    out = tmp_path / 'demo'
    argv = ['tools/analysis/reproduce.py', *DEMO, *TINY, '--seeds', '0', '1']
    result = run_tool(argv + ['--out', str(out)])
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    rows = {r['method']: r for r in summary['rows']}
    assert list(rows) == ['teacher', 'student', 'baseline', 'sakd']
    assert summary['seeds'] == [0, 1]
    assert summary['schedule']['epochs'] == 1
    assert 'mmsakd.SklearnDigits' in summary['data']
    assert rows['teacher']['n'] == 1
    for method in ('student', 'baseline', 'sakd'):
        row = rows[method]
        assert [r['seed'] for r in row['runs']] == [0, 1]
        assert row['n'] == 2 and row['top1_std'] is not None
        for run in row['runs']:
            assert 0 <= run['top1'] <= 100 and run['epoch'] == 1
            assert run['time_per_iter_s'] > 0
            assert osp.isfile(osp.join(run['work_dir'], 'epoch_1.pth'))
        assert 0 <= row['top1_mean'] <= 100
    # the distillation runs evaluated the trained teacher
    teacher_top1 = rows['teacher']['runs'][0]['top1']
    assert rows['sakd']['runs'][0]['teacher_top1'] == teacher_top1
    text = (out / 'summary.md').read_text()
    assert '| SAKD | `configs/demo/crd_res56_res20_digits.py` |' in text
    # where SAKD distilled: the last epoch's rates and the figures
    for run in rows['sakd']['runs']:
        rates = run['spot_rates']
        assert list(rates)[-1] == 'logits' and len(rates) >= 2
        assert all(0 <= v <= 1 for v in rates.values())
    assert summary['figures'] == ['spot_rates.png', 'spot_heatmap.png']
    assert all(
        (out / name).stat().st_size > 1000 for name in summary['figures'])
    assert '## Where SAKD distilled' in text
    assert '![spot_rates](spot_rates.png)' in text
    assert '| `logits` | ' in text
    # the same command again reuses every finished run
    result = run_tool(argv + ['--out', str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / 'summary.json').read_text())['rows'] == \
        summary['rows']


def test_schedules_that_follow_max_epochs_are_not_flagged(capsys):
    # the demo recipe: an iteration-based warm-up and a cosine without an
    # end, which the Runner ends at max_epochs
    cfg = tool._load(f'{REPO}/configs/demo/resnet56_digits.py')
    assert tool.schedule_options(cfg, 3) == ['train_cfg.max_epochs=3']
    assert 'not rescaled' not in capsys.readouterr().err
    cfg.param_scheduler[1]['end'] = cfg.train_cfg.max_epochs
    tool.schedule_options(cfg, 3)
    assert 'param_scheduler.1 (CosineAnnealingLR) is not rescaled' in \
        capsys.readouterr().err
