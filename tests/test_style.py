"""Style: the code passes flake8 (pycodestyle + pyflakes, setup.cfg)."""
import subprocess
import sys

from tests.helpers import REPO


def test_flake8_clean():
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', 'mmsakd', 'tools', 'tests',
         'setup.py'],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
