"""Mistakes on the command line of tools/train.py and tools/test.py end with
a message that names the file or key, the value and the fix, before
anything is built."""
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import REPO, run_tool

CFG = f'{REPO}/configs/demo/resnet18-w32_digits.py'


def _fails(args, env=None, timeout=120):
    result = run_tool(args, env=env, timeout=timeout)
    assert result.returncode != 0
    assert 'Epoch(train)' not in result.stdout + result.stderr
    return result.stderr


@pytest.mark.slow
def test_syntax_error_in_a_base_file(tmp_path):
    (tmp_path / 'base.py').write_text('x = (\n')
    (tmp_path / 'cfg.py').write_text("_base_ = ['./base.py']\n")
    err = _fails(['tools/train.py', str(tmp_path / 'cfg.py')])
    assert f'syntax error in config file {tmp_path}/base.py, line 1' in err


@pytest.mark.slow
@pytest.mark.parametrize('item, message', [
    ('train_cfg.max_epochs=abc', "train_cfg.max_epochs='abc': expected a "
     'number'),
    ('train_cfg.max_epochs', "'train_cfg.max_epochs': expected KEY=VALUE"),
    ("model={'type':'x'}", 'dict values are not supported'),
])
def test_bad_cfg_options(tmp_path, item, message):
    err = _fails([
        'tools/train.py', CFG, '--work-dir',
        str(tmp_path), '--cfg-options', item
    ],
                 timeout=60)
    assert message in err


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_pytorch_launcher_without_torchrun(tmp_path, tool):
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    args = [tool, CFG] + ([str(ckpt)] if tool.endswith('test.py') else [])
    # what torchrun would set is absent
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
    }
    result = subprocess.run(
        [sys.executable] + args + ['--launcher', 'pytorch'],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120)
    assert result.returncode != 0
    assert '--launcher pytorch needs the environment' in result.stderr
    assert 'tools/dist_train.sh' in result.stderr
    assert 'KeyError' not in result.stderr


class _CreatesFile:

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


@pytest.mark.slow
def test_resume_from_a_file_that_runs_code(tmp_path):
    marker = tmp_path / 'compromised'
    evil = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': {}, 'meta': {}, 'x': _CreatesFile(marker)}, evil)
    err = _fails([
        'tools/train.py', CFG, '--work-dir',
        str(tmp_path / 'w'), '--resume', evil, '--cfg-options',
        'train_dataloader.dataset.indices=16'
    ],
                 env=dict(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1'))
    assert f'--resume: refused to load {evil}' in err
    assert not marker.exists()


@pytest.mark.slow
def test_head_with_fewer_classes_than_the_labels(tmp_path):
    err = _fails([
        'tools/train.py', CFG, '--work-dir',
        str(tmp_path), '--cfg-options', 'model.head.num_classes=5'
    ])
    assert ('model.head.num_classes=5, but the training set '
            '(mmsakd.SklearnDigits) has 10 classes') in err


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_tool_without_mmsakd_installed_says_to_install(tool):
    # as in a fresh clone: `import mmsakd` finds no package
    result = subprocess.run([
        sys.executable, '-c',
        "import runpy, sys; sys.modules['mmsakd'] = None; "
        f"sys.argv = [{tool!r}, 'cfg.py', 'ckpt.pth']; "
        f"runpy.run_path({tool!r}, run_name='__main__')"
    ],
                            cwd=REPO,
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode != 0
    assert 'mmsakd is not installed' in result.stderr
    assert 'tools/setup_env.sh' in result.stderr
    assert 'Traceback' not in result.stderr
