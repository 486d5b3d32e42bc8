import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.config import config as config_module
from mmengine.utils import get_installed_path

import mmsakd
from tests.helpers import REPO, run_python


def _write_user_config(tmp_path):
    # a config of another project, outside this repository
    path = tmp_path / 'my_project' / 'my_kd.py'
    path.parent.mkdir()
    path.write_text(
        "_base_ = 'mmsakd::distill/kd-fitnet_r18w32-r18w16_cifar100.py'\n"
        'train_cfg = dict(max_epochs=3)\n')
    return str(path)


def test_inherit_mmsakd_config_from_another_project(tmp_path):
    cfg = Config.fromfile(_write_user_config(tmp_path))
    assert cfg.train_cfg.max_epochs == 3
    assert cfg.model.type == 'SingleTeacherDistill'
    assert cfg.default_scope == 'mmsakd'


def test_packaged_configs_are_the_repo_configs():
    path = config_module.get_installed_path('mmsakd')
    assert osp.samefile(
        osp.join(path, '.mim', 'configs', 'distill'),
        osp.join(REPO, 'configs', 'distill'))
    assert osp.isfile(osp.join(path, '.mim', 'tools', 'train.py'))


@pytest.mark.slow
def test_without_mmsakd_import_mmengine_refuses_the_path(tmp_path):
    result = run_python(
        'from mmengine.config import Config\n'
        f'Config.fromfile({_write_user_config(tmp_path)!r})',
        cwd=str(tmp_path))
    assert result.returncode != 0
    assert 'does not support to load mmsakd config' in result.stderr


def test_editable_install_location_fallback():
    # pkg_resources' location of an editable install is site-packages, which
    # holds no mmsakd/.mim; the patched lookup finds the imported package
    stock = get_installed_path('mmsakd')
    patched = config_module.get_installed_path('mmsakd')
    assert osp.isdir(osp.join(patched, '.mim'))
    assert osp.dirname(osp.abspath(mmsakd.__file__)) == patched or \
        stock == patched


def test_checkout_without_install_step_says_to_install(tmp_path, monkeypatch):
    from mmsakd.compat import config_paths
    from mmsakd.compat.config_paths import installed_path

    # a fresh clone: the package folder has no .mim (the install makes it)
    package = tmp_path / 'clone' / 'mmsakd'
    package.mkdir(parents=True)
    monkeypatch.setattr(config_paths, '_OWN', str(package))
    with pytest.raises(
            FileNotFoundError,
            match=r'mmsakd\'s configs are not installed .*clone/'
            r'mmsakd/.mim is missing.*tools/setup_env.sh'):
        installed_path(lambda name: str(package), 'mmsakd')


def test_the_compat_layer_does_not_import_the_package_face():
    """The compatibility layer runs first on ``import mmsakd``: none of its
    modules imports the package (or a sibling package) above it."""
    import ast
    import glob
    upward = []
    for path in sorted(glob.glob(osp.join(REPO, 'mmsakd', 'compat', '*.py'))):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 1:
                    names = ['.' * node.level + (node.module or '')]
                elif node.level == 1:
                    continue
                else:
                    names = [node.module]
            else:
                continue
            upward += [
                (osp.basename(path), n) for n in names
                if n.split('.')[0] == 'mmsakd'
                and not n.startswith('mmsakd.compat') or n.startswith('..')
            ]
    assert upward == []
