"""End-to-end runs of tools/train.py, tools/test.py and tools/dist_train.sh:
a real Runner, real MMRazor distiller and recorders, real data (the digits
shipped with scikit-learn), on tiny subsets so that the CPU suite stays
fast."""
import glob
import json
import math
import os.path as osp
import socket

import pytest
import torch

from tests.helpers import REPO, run_tool

# they train end to end or launch subprocesses
pytestmark = pytest.mark.slow

TEACHER_CFG = f'{REPO}/configs/demo/resnet18-w32_digits.py'
KD_CFG = f'{REPO}/configs/demo/kd-fitnet_r18w32-r18w16_digits.py'
TINY = [
    'train_dataloader.dataset.indices=64', 'train_dataloader.batch_size=16',
    'val_dataloader.dataset.indices=32', 'val_dataloader.batch_size=16',
    'default_hooks.logger.interval=1'
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ok(result):
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-5000:])
    return result


def _scalars(work_dir):
    """The ``scalars.json`` lines of the latest run in ``work_dir``."""
    path = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    with open(path) as f:
        return [json.loads(line) for line in f]


def trained_teacher(tmp_path_factory, config: str) -> str:
    """A teacher trained for one epoch on the tiny subset; its
    checkpoint."""
    work_dir = str(tmp_path_factory.mktemp('teacher'))
    _ok(
        run_tool([
            'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
            'train_cfg.max_epochs=1', *TINY
        ]))
    return osp.join(work_dir, 'epoch_1.pth')


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    return trained_teacher(tmp_path_factory, TEACHER_CFG)


def _kd_args(work_dir, teacher_ckpt, epochs):
    return [
        KD_CFG, '--work-dir', work_dir, '--cfg-options',
        f'model.teacher_ckpt={teacher_ckpt}', f'train_cfg.max_epochs={epochs}',
        *TINY
    ]


def _weights(path):
    return torch.load(path, map_location='cpu')['state_dict']


def test_kd_trains_validates_and_resumes_to_the_same_result(
        tmp_path, teacher_ckpt):
    straight = str(tmp_path / 'straight')
    _ok(run_tool(['tools/train.py', *_kd_args(straight, teacher_ckpt, 2)]))

    # the distiller's losses were computed and logged
    train_logs = [s for s in _scalars(straight) if 'loss' in s]
    assert len(train_logs) == 8
    for key in ('loss', 'student.loss', 'distill.loss_kd',
                'distill.loss_fitnet'):
        assert all(torch.isfinite(torch.tensor(s[key])) for s in train_logs)
    val_logs = [s for s in _scalars(straight) if 'accuracy/top1' in s]
    assert len(val_logs) == 2
    # SingleTeacherDistillValLoop reports the teacher too
    assert all('teacher.accuracy/top1' in s for s in val_logs)
    # the teacher was loaded from its checkpoint, not left random
    teacher = _weights(teacher_ckpt)
    student_run = _weights(osp.join(straight, 'epoch_2.pth'))
    key = 'backbone.conv1.weight'
    assert torch.equal(student_run[f'teacher.{key}'], teacher[key])

    # interrupted after epoch 1, then resumed: the same weights at the end
    resumed = str(tmp_path / 'resumed')
    _ok(run_tool(['tools/train.py', *_kd_args(resumed, teacher_ckpt, 1)]))
    log = _ok(
        run_tool([
            'tools/train.py', *_kd_args(resumed, teacher_ckpt, 2), '--resume'
        ]))
    assert 'resumed epoch: 1' in log.stdout + log.stderr
    final = _weights(osp.join(resumed, 'epoch_2.pth'))
    assert final.keys() == student_run.keys()
    for name, value in student_run.items():
        assert torch.equal(final[name], value), name

    # tools/test.py evaluates the student of the checkpoint
    tested = _ok(
        run_tool([
            'tools/test.py', KD_CFG,
            osp.join(straight, 'epoch_2.pth'), '--work-dir',
            str(tmp_path / 'test'), '--cfg-options',
            f'model.teacher_ckpt={teacher_ckpt}', *TINY
        ]))
    assert 'accuracy/top1' in tested.stdout + tested.stderr


def test_missing_teacher_checkpoint_fails_early(tmp_path):
    result = run_tool([
        'tools/train.py',
        *_kd_args(str(tmp_path), str(tmp_path / 'no_teacher.pth'), 1)
    ])
    assert result.returncode != 0
    assert 'model.teacher_ckpt=' in result.stderr
    assert 'Train the teacher first' in result.stderr
    assert 'Epoch(train)' not in result.stdout + result.stderr


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU (gloo) DDP path')
def test_two_process_ddp_trains_and_resumes(tmp_path, teacher_ckpt):
    work_dir = str(tmp_path / 'ddp')
    env = dict(PORT=str(_free_port()))
    _ok(
        run_tool([
            'tools/dist_train.sh', KD_CFG, '2',
            *_kd_args(work_dir, teacher_ckpt, 1)[1:]
        ],
                 env=env))
    env = dict(PORT=str(_free_port()))
    log = _ok(
        run_tool([
            'tools/dist_train.sh', KD_CFG, '2',
            *_kd_args(work_dir, teacher_ckpt, 2)[1:], '--resume'
        ],
                 env=env))
    out = log.stdout + log.stderr
    assert 'Distributed training: True' in out
    assert 'resumed epoch: 1' in out
    # 64 images / (2 ranks x 16 per rank) = 2 iterations in epoch 2
    train_logs = [s for s in _scalars(work_dir) if 'loss' in s]
    assert [s['epoch'] for s in train_logs] == [2, 2]
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))


SAKD_TEACHER_CFG = f'{REPO}/configs/demo/resnet56_digits.py'
SAKD_CFG = f'{REPO}/configs/demo/crd_res56_res20_digits.py'
# the CRD sampler wraps the training set: the subset goes one level down
SAKD_TINY = [o
             for o in TINY if not o.startswith('train_dataloader.dataset')] + [
                 'train_dataloader.dataset.dataset.indices=64',
                 'train_dataloader.dataset.neg_num=16',
                 'model.distiller.distill_losses.loss_crd.neg_num=16'
             ]


def test_sakd_demo_trains_and_resumes_to_the_same_result(tmp_path):
    """The offline main job (spot-adaptive CRD + KD) through tools/train.py:
    policy gates, CRD memory bank, routing adapters and Gumbel noise all
    continue exactly after an interruption."""
    teacher_dir = str(tmp_path / 'teacher')
    _ok(
        run_tool([
            'tools/train.py', SAKD_TEACHER_CFG, '--work-dir', teacher_dir,
            '--cfg-options', 'train_cfg.max_epochs=1', *TINY
        ]))
    teacher = osp.join(teacher_dir, 'epoch_1.pth')

    def args(work_dir, epochs):
        return [
            'tools/train.py', SAKD_CFG, '--work-dir', work_dir,
            '--cfg-options', f'model.teacher_ckpt={teacher}',
            f'train_cfg.max_epochs={epochs}', *SAKD_TINY
        ]

    straight = str(tmp_path / 'straight')
    _ok(run_tool(args(straight, 2)))
    logs = [s for s in _scalars(straight) if 'loss' in s]
    assert len(logs) == 8
    for key in ('sakd.loss_route', 'distill.loss_crd', 'distill.loss_kd',
                'sakd.rate.neck', 'sakd.rate.logits'):
        assert all(math.isfinite(s[key]) for s in logs), key
    assert osp.isfile(osp.join(straight, 'spot_statistics.csv'))

    # the interruption: a first launch that stops after epoch 1 (its cosine
    # still ends at epoch 2, as in the straight run), then --resume
    resumed = str(tmp_path / 'resumed')
    _ok(run_tool(args(resumed, 1) + ['param_scheduler.1.end=2']))
    _ok(run_tool(args(resumed, 2) + ['--resume']))
    expected = _weights(osp.join(straight, 'epoch_2.pth'))
    final = _weights(osp.join(resumed, 'epoch_2.pth'))
    assert final.keys() == expected.keys()
    assert any(k.startswith('sakd_policy.') for k in final)
    assert any('memory' in k for k in final)  # the CRD memory bank
    for name, value in expected.items():
        assert torch.equal(final[name], value), name
    # and so is where the policy distilled, row for row
    for ext in ('json', 'csv'):
        with open(osp.join(straight, f'spot_statistics.{ext}')) as f, \
                open(osp.join(resumed, f'spot_statistics.{ext}')) as g:
            assert g.read() == f.read(), ext
