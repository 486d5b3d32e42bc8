"""Packaging: a regular (non-editable) build ships configs and tools inside
the package, the OpenMMLab way (``mmsakd/.mim``)."""
import glob
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO

IGNORE = shutil.ignore_patterns('.git', '.venv', 'work_dirs', 'data', '.mim',
                                '*.egg-info', 'build', 'dist', '__pycache__')


@pytest.mark.slow
def test_wheel_ships_configs_and_tools(tmp_path):
    src = tmp_path / 'src'
    shutil.copytree(REPO, src, ignore=IGNORE, symlinks=True)
    result = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
        '--no-build-isolation', '-w',
        str(tmp_path / 'dist'), '.'
    ],
                            cwd=src,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel, ) = glob.glob(str(tmp_path / 'dist' / 'mmsakd-*.whl'))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ('mmsakd/.mim/model-index.yml',
                 'mmsakd/.mim/configs/sakd/metafile.yml',
                 'mmsakd/.mim/configs/sakd/README.md',
                 'mmsakd/.mim/configs/_base_/default_runtime.py',
                 'mmsakd/.mim/configs/distill/'
                 'kd-fitnet_r18w32-r18w16_cifar100.py',
                 'mmsakd/.mim/tools/train.py',
                 'mmsakd/.mim/tools/dist_train.sh',
                 'mmsakd/compat/checkpoint.py'):
        assert path in names, path
    assert not any(n.startswith(('tests/', 'configs/')) for n in names)
