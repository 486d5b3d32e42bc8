"""Style: the code passes flake8 (pycodestyle + pyflakes), isort and yapf,
as configured in setup.cfg."""
import subprocess
import sys

import pytest

from tests.helpers import REPO

PATHS = ['mmsakd', 'tools', 'tests', 'setup.py']
CHECKS = {
    'flake8': ['flake8'],
    'isort': ['isort', '--check-only', '--diff'],
    'yapf': ['yapf', '--diff', '--recursive', '--parallel'],
}


@pytest.mark.parametrize('tool', sorted(CHECKS))
def test_lint_clean(tool):
    result = subprocess.run([sys.executable, '-m', *CHECKS[tool], *PATHS],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, (
        f'{tool} finds problems; fix them, e.g. with `python -m isort '
        f'{" ".join(PATHS)}` and `python -m yapf -i -r '
        f'{" ".join(PATHS)}`:\n' + result.stdout[-5000:] +
        result.stderr[-2000:])
