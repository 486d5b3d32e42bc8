"""The model index: ``model-index.yml`` imports one metafile per config
folder (OpenMMLab's format), every config is listed there and in the
folder's README table, and every listed file exists.

Paths in the metafiles are relative to the repository root, as in
OpenMMLab's metafiles (``Config: configs/resnet/...``).
"""
import glob
import os.path as osp
import re

import pytest
import yaml
from mmengine.config import Config

from tests.helpers import REPO

FOLDERS = ('vanilla', 'baselines', 'sakd')


def _yaml(path: str):
    with open(osp.join(REPO, path)) as f:
        return yaml.safe_load(f)


def _configs_on_disk(folder: str) -> list:
    return sorted(
        osp.relpath(p, REPO)
        for p in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))


def _models(folder: str) -> list:
    return _yaml(f'configs/{folder}/metafile.yml')['Models']


def _exists(path: str) -> bool:
    return osp.isfile(osp.join(REPO, path))


def test_model_index_imports_one_metafile_per_folder():
    index = _yaml('model-index.yml')
    assert index['Import'] == [f'configs/{f}/metafile.yml' for f in FOLDERS]
    for path in index['Import']:
        assert _exists(path), path


@pytest.mark.parametrize('folder', FOLDERS)
def test_every_config_is_listed_and_every_listed_config_exists(folder):
    metafile = _yaml(f'configs/{folder}/metafile.yml')
    listed = [m['Config'] for m in metafile['Models']]
    on_disk = _configs_on_disk(folder)
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    missing = sorted(set(on_disk) - set(listed))
    assert not missing, f'not in configs/{folder}/metafile.yml: {missing}'
    absent = sorted(p for p in listed if not _exists(p))
    assert not absent, f'listed but no such file: {absent}'

    collections = {c['Name']: c for c in metafile['Collections']}
    for collection in collections.values():
        assert _exists(collection['README']), collection['README']
        assert collection['Paper']['URL'].startswith('https://arxiv.org/')
    for model in metafile['Models']:
        assert model['In Collection'] in collections, model['Name']
        meta = model['Metadata']
        assert meta['Training Data'] == 'CIFAR-100'
        for role in ('Student', 'Teacher'):
            if role in meta:
                assert _exists(meta[role]['Config']), (model['Name'], role)
        if 'Baseline' in meta:
            assert _exists(meta['Baseline']), model['Name']
        for result in model.get('Results', []):
            assert result['Dataset'] == 'CIFAR-100'
            # empty until measured; numbers once they are
            for value in result['Metrics'].values():
                assert isinstance(value, (int, float)), model['Name']


def test_model_names_are_unique_across_the_index():
    names = [m['Name'] for f in FOLDERS for m in _models(f)]
    assert len(names) == len(set(names)), sorted(
        n for n in names if names.count(n) > 1)


@pytest.mark.parametrize('folder', FOLDERS)
def test_readme_table_lists_every_config(folder):
    with open(osp.join(REPO, 'configs', folder, 'README.md')) as f:
        readme = f.read()
    rows = re.findall(r'^\| \[([^\]]+\.py)\]\(([^)]+)\) \|', readme, re.M)
    assert sorted(link for _, link in rows) == sorted(
        osp.basename(p) for p in _configs_on_disk(folder))
    # every config linked anywhere in the README exists
    for target in re.findall(r'\]\(([^)]+\.py)\)', readme):
        path = osp.normpath(osp.join('configs', folder, target))
        assert _exists(path), f'configs/{folder}/README.md links {target}'


def test_student_and_teacher_are_the_configs_models():
    """The Student / Teacher / Baseline of each distillation entry are
    what its config builds."""
    for folder in ('baselines', 'sakd'):
        for model in _models(folder):
            cfg = Config.fromfile(osp.join(REPO, model['Config'])).model
            meta = model['Metadata']
            for role, part in (('Student', 'architecture'), ('Teacher',
                                                             'teacher')):
                cfg_path = cfg[part]['cfg_path']
                assert cfg_path.startswith('mmsakd::')
                assert meta[role]['Config'] == (
                    'configs/' + cfg_path[len('mmsakd::'):]), (model['Name'],
                                                               role)
            if folder == 'sakd':
                assert cfg['type'] == 'mmsakd.SpotAdaptiveDistill'
                assert meta['Baseline'] == model['Config'].replace(
                    'configs/sakd/', 'configs/baselines/')
            else:
                assert cfg['type'] == 'SingleTeacherDistill'


def test_modelindex_reads_the_index():
    """The ``modelindex`` package (installed with MMPretrain, used by
    ``mim``) parses the index offline and finds every model."""
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(osp.join(REPO, 'model-index.yml'))
    names = {m.name for m in index.models}
    assert names == {m['Name'] for f in FOLDERS for m in _models(f)}
    collections = {c.name for c in index.collections}
    assert {m.in_collection for m in index.models} <= collections
    assert {m.config
            for m in index.models
            } == {p
                  for f in FOLDERS
                  for p in _configs_on_disk(f)}
