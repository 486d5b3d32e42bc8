"""Install mmsakd; ship its configs and tools inside the package (``.mim``).

OpenMMLab packages carry their ``configs/`` and ``tools/`` under
``<package>/.mim`` so that other projects can inherit them with
``_base_ = 'mmsakd::<path>.py'``. An editable install links them, a regular
install (wheel or sdist) copies them.
"""
import os
import os.path as osp
import shutil
import sys
from setuptools import find_packages, setup

REPO = osp.dirname(osp.abspath(__file__))
MIM_ITEMS = ('configs', 'tools', 'model-index.yml')


def read_requirements(path: str) -> list:
    """Parse a requirements file, following ``-r`` includes."""
    reqs = []
    with open(osp.join(REPO, path)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += read_requirements(
                    osp.join(osp.dirname(path), line[3:].strip()))
            else:
                reqs.append(line)
    return reqs


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(REPO, 'mmsakd', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Put ``configs``, ``tools`` and ``model-index.yml`` under
    ``mmsakd/.mim``: symlinks for editable installs, copies otherwise."""
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(REPO, 'mmsakd', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_ITEMS:
        src = osp.join(REPO, name)
        dst = osp.join(mim_path, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmsakd',
        version=get_version(),
        description='Spot-adaptive knowledge distillation (SAKD) for MMRazor',
        long_description=open(osp.join(REPO, 'README.md')).read(),
        long_description_content_type='text/markdown',
        keywords='knowledge distillation, spot-adaptive, mmrazor, openmmlab',
        packages=find_packages(
            exclude=('configs', 'tools', 'tools.*', 'tests', 'tests.*',
                     'docs')),
        include_package_data=True,
        package_data={'mmsakd': ['.mim/**/*', '.mim/*']},
        python_requires='>=3.10',
        install_requires=read_requirements('requirements/runtime.txt'),
        extras_require={'tests': read_requirements('requirements/tests.txt')},
        license='Apache License 2.0',
        zip_safe=False)
