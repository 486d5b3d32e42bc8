import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmrazor.models.distillers import ConfigurableDistiller

from mmsakd.compat.connector_init import patch_connector_init
from mmsakd.registry import MODELS
from tests.helpers import REPO

PREFIX = 'distiller.connectors.loaded.'


@pytest.fixture(autouse=True)
def mmsakd_scope():
    # other tests may leave another default scope behind
    with DefaultScope.overwrite_default_scope('mmsakd'):
        yield


def distiller(seed, init_cfg=None):
    torch.manual_seed(seed)
    return ConfigurableDistiller(
        connectors=dict(
            loaded=dict(
                type='Translator',
                in_channel=4,
                out_channel=2,
                init_cfg=init_cfg),
            default=dict(
                type='ConvModuleConnector',
                in_channel=4,
                out_channel=4,
                norm_cfg=dict(type='BN'),
                act_cfg=dict(type='ReLU'))))


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def saved_source(tmp_path):
    source = distiller(seed=1)
    path = str(tmp_path / 'source.pth')
    torch.save(
        {
            'state_dict': {
                f'distiller.{k}': v
                for k, v in source.state_dict().items()
            },
            'meta': {}
        }, path)
    return source, path


def test_connector_init_cfg_is_applied(tmp_path):
    source, path = saved_source(tmp_path)
    target = distiller(
        seed=2,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix=PREFIX))
    default_before = state(target.connectors['default'])
    assert not same(
        state(target.connectors['loaded']), state(source.connectors['loaded']))
    target.init_weights()
    assert same(
        state(target.connectors['loaded']), state(source.connectors['loaded']))
    # a connector without init_cfg keeps its initialisation
    assert same(state(target.connectors['default']), default_before)


def test_unpatched_mmrazor_ignores_connector_init_cfg(tmp_path, monkeypatch):
    monkeypatch.setattr(ConfigurableDistiller, 'init_weights',
                        ConfigurableDistiller.init_weights.__wrapped__)
    _, path = saved_source(tmp_path)
    target = distiller(
        seed=2,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix=PREFIX))
    before = state(target.connectors['loaded'])
    target.init_weights()
    assert same(state(target.connectors['loaded']), before)


def test_patch_is_applied_on_import_and_idempotent(monkeypatch):
    # restored after the test, whatever the patch does here
    monkeypatch.setattr(ConfigurableDistiller, 'init_weights',
                        ConfigurableDistiller.init_weights)
    assert patch_connector_init() == []


def build(cfg):
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    return model


def test_ft_configs_load_the_pretrained_paraphraser(tmp_path):
    """The paraphraser that ft_res56_res20_pretrain.py trains is the one
    the FT configs (baseline and spot-adaptive) distil with."""
    pretrain = build(
        Config.fromfile(
            f'{REPO}/configs/baselines/ft_res56_res20_pretrain.py'))
    pretrain.init_weights()
    path = str(tmp_path / 'epoch_30.pth')
    torch.save({'state_dict': pretrain.state_dict(), 'meta': {}}, path)
    paraphraser = state(pretrain.distiller.connectors['t_factor'])
    for name in ('baselines', 'sakd'):
        cfg = Config.fromfile(f'{REPO}/configs/{name}/ft_res56_res20.py')
        cfg.model.distiller.connectors.t_factor.init_cfg.checkpoint = path
        model = build(cfg)
        connectors = model.distiller.connectors
        assert not same(state(connectors['t_factor']), paraphraser)
        translator = state(connectors['s_factor'])
        model.init_weights()
        assert same(state(connectors['t_factor']), paraphraser), name
        assert same(state(connectors['s_factor']), translator), name
