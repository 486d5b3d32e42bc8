"""The transformer distillation configs of ``configs/distill/``: the MMRazor
baselines build as MMRazor's own algorithm, and their spot-adaptive swaps
(the model type alone) resolve the token spots."""
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsakd.registry import MODELS
from tests.helpers import REPO

PAIRS = {
    'sp-kd_deit-s_deit-t_cifar100':
    ((('backbone.layers.5', 'backbone.layers.5'), ('backbone', 'backbone')),
     (((65, 192), (65, 384)), ((192, ), (384, )))),
    'sp-kd_r18w32_deit-t_cifar100':
    ((('backbone.layers.5', 'backbone.layer2'), ), (((65, 192), (64, 16,
                                                                 16)), )),
}


def _build(name):
    cfg = Config.fromfile(f'{REPO}/configs/distill/{name}.py')
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_baseline_and_spot_adaptive_swap(name):
    assert type(_build(name)).__name__ == 'SingleTeacherDistill'
    model = _build(f'sakd_{name}')
    assert type(model).__name__ == 'SpotAdaptiveDistill'
    names, shapes = PAIRS[name]
    assert model.distiller.spot_table.names == names
    assert model.distiller.spot_table.shapes == shapes
