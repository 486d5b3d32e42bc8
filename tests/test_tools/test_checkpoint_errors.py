"""tools/train.py and tools/test.py refuse checkpoints of the wrong model,
and files that would run code, before training or evaluating."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsakd.registry import MODELS
from tests.helpers import REPO, run_tool

TEACHER_CFG = f'{REPO}/configs/demo/resnet18-w32_digits.py'
STUDENT_CFG = f'{REPO}/configs/demo/resnet56_digits.py'
KD_CFG = f'{REPO}/configs/demo/kd-fitnet_r18w32-r18w16_digits.py'
SAKD_CFG = f'{REPO}/configs/demo/crd_res56_res20_digits.py'
TINY = [
    'train_dataloader.dataset.indices=32', 'train_dataloader.batch_size=16',
    'val_dataloader.dataset.indices=16', 'val_dataloader.batch_size=16',
    'train_cfg.max_epochs=1'
]


def _classifier_ckpt(config, path):
    cfg = Config.fromfile(config).model
    cfg.data_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor')
    with DefaultScope.overwrite_default_scope('mmsakd'):
        model = MODELS.build(cfg)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


class _CreatesFile:

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


@pytest.mark.slow
@pytest.mark.parametrize('config, wrong_teacher', [(KD_CFG, STUDENT_CFG),
                                                   (SAKD_CFG, TEACHER_CFG)])
def test_train_refuses_a_teacher_of_another_arch(tmp_path, config,
                                                 wrong_teacher):
    # resnet56 weights for a resnet18-w32 teacher (baseline KD + FitNet),
    # resnet18-w32 weights for a resnet56 teacher (spot-adaptive CRD + KD)
    wrong = _classifier_ckpt(wrong_teacher, tmp_path / 'wrong.pth')
    result = run_tool([
        'tools/train.py', config, '--work-dir',
        str(tmp_path / 'kd'), '--cfg-options', f'model.teacher_ckpt={wrong}',
        *TINY
    ])
    assert result.returncode != 0
    assert f"model.teacher_ckpt='{wrong}' does not fit" in result.stderr
    assert 'Epoch(train)' not in result.stdout + result.stderr


@pytest.mark.slow
def test_test_tool_refuses_a_classifier_ckpt_for_a_distill_config(tmp_path):
    teacher = _classifier_ckpt(TEACHER_CFG, tmp_path / 'teacher.pth')
    result = run_tool([
        'tools/test.py', KD_CFG, teacher, '--work-dir',
        str(tmp_path / 'test'), '--cfg-options',
        f'model.teacher_ckpt={teacher}', *TINY
    ])
    assert result.returncode != 0
    assert f"CHECKPOINT='{teacher}' does not fit" in result.stderr
    assert 'evaluate it with the config it was trained with' in \
        result.stderr
    assert 'accuracy/top1' not in result.stdout + result.stderr


@pytest.mark.slow
def test_env_cannot_make_train_run_a_teacher_ckpt(tmp_path):
    marker = tmp_path / 'compromised'
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _CreatesFile(marker)}, evil)
    result = run_tool([
        'tools/train.py', KD_CFG, '--work-dir',
        str(tmp_path / 'kd'), '--cfg-options', f'model.teacher_ckpt={evil}',
        *TINY
    ],
                      env=dict(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1'))
    assert result.returncode != 0
    assert 'model.teacher_ckpt: refused to load' in result.stderr
    assert not marker.exists()
