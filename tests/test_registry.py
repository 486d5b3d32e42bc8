import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope

from mmsakd.registry import DATASETS, HOOKS, MODELS, TRANSFORMS
from tests.helpers import REPO


def test_registries_are_children_of_mmrazor():
    from mmrazor.registry import MODELS as MMRAZOR_MODELS
    assert MODELS.scope == 'mmsakd'
    assert MODELS.parent is MMRAZOR_MODELS
    assert MMENGINE_MODELS._search_child('mmsakd') is MODELS


@pytest.mark.parametrize('name', [
    'SingleTeacherDistill', 'mmrazor.SingleTeacherDistill',
    'ConfigurableDistiller', 'KLDivergence'
])
def test_mmrazor_types_resolve_from_mmsakd_scope(name):
    assert MODELS.get(name) is not None


def test_mmpretrain_types_need_their_prefix():
    from mmpretrain.models import ImageClassifier
    assert MODELS.get('mmpretrain.ImageClassifier') is ImageClassifier
    assert TRANSFORMS.get('mmpretrain.PackInputs') is not None
    assert MODELS.get('ImageClassifier') is None


def test_mmsakd_types_resolve_with_prefix_from_any_scope():
    from mmsakd.datasets import SklearnDigits
    from mmsakd.engine import RNGStateHook
    assert DATASETS.get('SklearnDigits') is SklearnDigits
    assert HOOKS.get('RNGStateHook') is RNGStateHook
    # how a config with default_scope='mmrazor' (or a `_scope_='mmrazor'`
    # block) builds `type='mmsakd.X'`
    with DefaultScope.overwrite_default_scope('mmrazor'):
        dataset = MMENGINE_DATASETS.build(
            dict(type='mmsakd.SklearnDigits', split='test', indices=4))
    assert isinstance(dataset, SklearnDigits) and len(dataset) == 4
    # from any other scope, a `_scope_='mmsakd'` block finds it
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = MMENGINE_DATASETS.build(
            dict(type='SklearnDigits', _scope_='mmsakd', split='test'))
    assert isinstance(dataset, SklearnDigits)


def test_config_builds_mmrazor_and_mmpretrain_types():
    """A real mmsakd config: a MMRazor algorithm whose student and teacher
    are MMPretrain classifiers, built from the mmsakd scope."""
    from mmpretrain.models import ImageClassifier
    from mmrazor.models import SingleTeacherDistill
    cfg = Config.fromfile(
        f'{REPO}/configs/distill/kd-fitnet_r18w32-r18w16_cifar100.py')
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MMENGINE_MODELS.build(cfg.model)
    assert isinstance(model, SingleTeacherDistill)
    assert isinstance(model.student, ImageClassifier)
    assert isinstance(model.teacher, ImageClassifier)
    assert model.teacher.backbone.layer4[-1].conv2.out_channels == 256
    assert model.student.backbone.layer4[-1].conv2.out_channels == 128
