import pytest
import torch

from mmsakd.compat import mmrazor_torch2, patch_mmrazor_quantization_imports
from tests.helpers import run_python

IMPORT_MMRAZOR = 'from mmrazor.models import SingleTeacherDistill'
PATCH_FILE = mmrazor_torch2.__file__


@pytest.mark.slow
def test_stock_mmrazor_does_not_import_on_this_torch():
    """Documents why the patch exists: without it, mmrazor.models fails."""
    assert int(torch.__version__.split('.')[0]) >= 2
    result = run_python(IMPORT_MMRAZOR)
    assert result.returncode != 0
    assert 'torch>=1.13' in result.stderr


@pytest.mark.slow
def test_mmrazor_imports_after_patch():
    # load the patch module on its own: importing mmsakd would apply it
    result = run_python(
        'import importlib.util as u\n'
        f'spec = u.spec_from_file_location("patch", {PATCH_FILE!r})\n'
        'm = u.module_from_spec(spec); spec.loader.exec_module(m)\n'
        'print(len(m.patch_mmrazor_quantization_imports()))\n' +
        IMPORT_MMRAZOR + '\nimport mmrazor.engine')
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) > 0


def test_patch_is_idempotent():
    # applied when mmsakd was imported; a second call changes nothing
    assert patch_mmrazor_quantization_imports() == []
    import torch.ao.quantization.fuser_method_mappings as fmm
    assert fmm.reverse2 is fmm._reverse2
