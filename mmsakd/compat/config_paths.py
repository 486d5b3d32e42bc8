"""Make ``mmsakd::<path>.py`` config paths resolve in mmengine.

mmengine resolves ``_base_ = 'pkg::path.py'`` and ``cfg_path='pkg::path.py'``
only for packages in its hard-coded ``MODULE2PACKAGE`` map (OpenMMLab's own);
any other package fails with ``mmengine does not support to load mmsakd
config``. mmsakd adds itself to that map when it is imported.

The config then lives at ``<installed mmsakd>/.mim/configs/<path>.py``.
mmengine finds the installed package with ``pkg_resources``, which for a
PEP 660 editable install (``pip install -e .``) points at ``site-packages``
instead of the source tree; :func:`installed_path` falls back to the imported
package's own directory there.

``_base_`` is resolved while a config file is parsed, before its
``custom_imports`` run, so a process must ``import mmsakd`` before it parses a
config that inherits ``mmsakd::...`` (mmsakd's tools do; see
docs/get_started.md for other projects' tools).
"""
import functools
import os.path as osp

PACKAGE = 'mmsakd'
# the package's own folder, known without importing the package
_OWN = osp.dirname(osp.dirname(osp.abspath(__file__)))
_PATCHED_ATTR = '_mmsakd_patched'


def installed_path(original, package: str) -> str:
    """``get_installed_path`` that understands editable installs.

    Raises:
        FileNotFoundError: mmsakd has no ``.mim`` folder (a source checkout
            used before its install step), which mmengine would report as a
            missing ``.mim/model-index.yml``.
    """
    path = original(package)
    if package == PACKAGE and not osp.isdir(osp.join(path, '.mim')):
        if osp.isdir(osp.join(_OWN, '.mim')):
            return _OWN
        raise FileNotFoundError(
            f'mmsakd\'s configs are not installed ({osp.join(_OWN, ".mim")} '
            'is missing; the install step creates it): run `bash '
            'tools/setup_env.sh` (or `pip install -e .`) in the repository, '
            'then use its .venv/bin/python.')
    return path


def register_config_package() -> list:
    """Register mmsakd for ``pkg::`` config paths (idempotent)."""
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils
    from mmengine.hub import hub as hub_module

    patched = []
    if config_utils.MODULE2PACKAGE.get(PACKAGE) != PACKAGE:
        config_utils.MODULE2PACKAGE[PACKAGE] = PACKAGE
        patched.append('MODULE2PACKAGE')
    # both modules imported get_installed_path by name; patch those references
    for module in (config_module, hub_module):
        original = module.get_installed_path
        if not getattr(original, _PATCHED_ATTR, False):
            wrapped = functools.wraps(original)(
                functools.partial(installed_path, original))
            setattr(wrapped, _PATCHED_ATTR, True)
            module.get_installed_path = wrapped
            patched.append(f'{module.__name__}.get_installed_path')
    return patched
