"""MMPretrain's VisionTransformer cut into units (embedding, one unit per
encoder layer, the output type), and a ViT -> ViT pair made spot-adaptive
with token spots."""
import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmsakd.models.sakd import SegmentExecutor, build_adapter
from mmsakd.models.sakd.adapters import TokenReg, adapter_spec
from mmsakd.registry import MODELS
from tests.test_models.test_algorithms.test_spot_adaptive_distill import (
    batch, classifier, pair, rec)


def vit(dims=32, layers=2, patch=8, out_type='cls_token'):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(
            type='mmpretrain.VisionTransformer',
            arch=dict(
                embed_dims=dims,
                num_layers=layers,
                num_heads=2,
                feedforward_channels=2 * dims),
            img_size=32,
            patch_size=patch,
            out_type=out_type),
        head=dict(
            type='mmpretrain.VisionTransformerClsHead',
            num_classes=10,
            in_channels=dims,
            loss=dict(type='mmpretrain.CrossEntropyLoss')))


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmsakd'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('out_type', ['cls_token', 'avg_featmap'])
def test_the_units_give_the_models_own_logits(out_type):
    model = build(vit(layers=3, out_type=out_type)).eval()
    executor = SegmentExecutor(model, (3, 32, 32))
    assert executor.names[:4] == ('backbone.pre_norm', 'backbone.layers.0',
                                  'backbone.layers.1', 'backbone.ln1')
    assert executor.names[-1] == 'head'
    for size in (32, 64):  # the position embedding is resized at 64 px
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            logits = model(x, mode='tensor')
            tokens = executor.run(x, None, 1)  # after layers.0
            assert tokens.shape == (2, 1 + (size // 8)**2, 32)
            # resumed from a token spot, bit for bit
            assert torch.equal(executor.run(tokens, 1), logits)
            assert torch.equal(executor.run(x), logits)


def test_an_input_shape_the_patch_size_does_not_divide_is_refused():
    with pytest.raises(
            ValueError,
            match=r'patch size \(8, 8\) does not '
            r'divide them.*model\.sakd\.input_shape'):
        SegmentExecutor(build(vit(patch=8)), (3, 36, 36))


def test_a_vit_returning_several_layers_is_refused():
    cfg = vit()
    cfg['backbone']['out_indices'] = [0, 1]
    with pytest.raises(
            TypeError, match=r'out_indices=\[0, 1\] returns '
            'several layers'):
        SegmentExecutor(build(cfg), (3, 32, 32))


def test_token_adapters():
    assert adapter_spec((17, 32), (17, 48)).kind == 'tokens'
    adapter = build_adapter((17, 32), (17, 48))
    assert isinstance(adapter, TokenReg)
    assert adapter(torch.randn(2, 17, 32)).shape == (2, 17, 48)
    with pytest.raises(
            ValueError, match=r'the numbers of tokens differ '
            r'\(17 and 65\)'):
        adapter_spec((17, 32), (65, 48))
    with pytest.raises(ValueError, match='the ranks differ'):
        adapter_spec((17, 32), (32, ))


TOKENS = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        tok=rec('backbone.layers.0'),
        cls=dict(type='ModuleOutputs', source='backbone'),
        logits=rec('head.layers.head')),
    teacher_recorders=dict(
        tok=rec('backbone.layers.1'),
        cls=dict(type='ModuleOutputs', source='backbone'),
        logits=rec('head.layers.head')),
    distill_losses=dict(
        loss_tok=dict(type='mmsakd.SPLoss', loss_weight=100.0),
        loss_cls=dict(type='mmsakd.SPLoss', loss_weight=100.0),
        loss_kd=dict(type='KLDivergence', tau=4)),
    loss_forward_mappings=dict(
        loss_tok=pair('tok'),
        loss_cls=pair('cls', data_idx=0),
        loss_kd=pair('logits', 'preds_S', 'preds_T')))


@pytest.mark.slow
def test_vit_to_vit_builds_resolves_token_spots_and_trains():
    model = build(
        dict(
            type='mmsakd.SpotAdaptiveDistill',
            architecture=vit(dims=32, layers=2),
            teacher=vit(dims=48, layers=3),
            distiller=TOKENS,
            data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor')))
    table = model.distiller.spot_table
    assert table.names == (('backbone.layers.0', 'backbone.layers.1'),
                           ('backbone', 'backbone'))
    assert table.shapes == (((17, 32), (17, 48)), ((32, ), (48, )))
    assert table.pool_channels == 32 + 48  # the class tokens
    assert not any(
        n.startswith('teacher.')
        for n, p in model.named_parameters() if p.requires_grad)
    train_two_iterations(model)


def test_deit_with_a_distillation_token_is_refused_with_the_reason():
    cfg = vit()
    cfg['backbone']['type'] = 'mmpretrain.DistilledVisionTransformer'
    with pytest.raises(TypeError) as info:
        SegmentExecutor(build(cfg), (3, 32, 32))
    assert 'returns the pair (class token, distillation token)' in str(
        info.value)
    assert "arch='deit-tiny'" in str(info.value)


def test_map_and_token_adapters():
    from mmsakd.models.sakd.adapters import (MapToTokens, TokensToMap,
                                             token_grid)
    assert token_grid(65) == (8, 1) and token_grid(66) == (8, 2)
    assert token_grid(16) == (4, 0)
    for bad in (20, 3):
        with pytest.raises(ValueError, match='reads the patch grid'):
            token_grid(bad)
    to_tokens = build_adapter((32, 16, 16), (65, 48))
    assert isinstance(to_tokens, MapToTokens)
    assert to_tokens(torch.randn(2, 32, 16, 16)).shape == (2, 65, 48)
    to_map = build_adapter((65, 48), (32, 16, 16))
    assert isinstance(to_map, TokensToMap)
    assert to_map(torch.randn(2, 65, 48)).shape == (2, 32, 16, 16)
    assert adapter_spec((32, 16, 16), (65, 48)).extra_tokens == 1
    # images of another size: another grid, the same extra tokens
    assert to_map(torch.randn(2, 257, 48)).shape == (2, 32, 32, 32)
    assert to_tokens(torch.randn(2, 32, 32, 32)).shape == (2, 257, 48)
    with pytest.raises(ValueError, match='the tokens are no square grid'):
        to_map(torch.randn(2, 71, 48))


def mixed(student_spot, teacher_spot, student_logits, teacher_logits):
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            f=rec(student_spot), logits=rec(student_logits)),
        teacher_recorders=dict(
            f=rec(teacher_spot), logits=rec(teacher_logits)),
        distill_losses=dict(
            loss_sp=dict(type='mmsakd.SPLoss', loss_weight=100.0),
            loss_kd=dict(type='KLDivergence', tau=4)),
        loss_forward_mappings=dict(
            loss_sp=pair('f'), loss_kd=pair('logits', 'preds_S', 'preds_T')))


def train_two_iterations(model):
    optim = build_optim_wrapper(
        model, dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    model.train()
    for seed in (0, 1):
        x, samples = batch(n=4, seed=seed)
        loss, log = model.parse_losses(model(x, samples, mode='loss'))
        assert math.isfinite(loss.item()), log
        optim.zero_grad()
        loss.backward()
        trainable = {
            n: p
            for n, p in model.named_parameters() if p.requires_grad
        }
        missing = [n for n, p in trainable.items() if p.grad is None]
        assert not missing, missing[:5]
        optim.step()


@pytest.mark.slow
@pytest.mark.parametrize('direction', ['cnn->vit', 'vit->cnn'])
def test_cnn_and_vit_route_through_map_token_adapters(direction):
    vit_cfg, vit_spot, vit_logits = vit(dims=32, layers=2,
                                        patch=4), 'backbone.layers.0', \
        'head.layers.head'
    cnn_cfg, cnn_spot, cnn_logits = classifier(
        14), 'backbone.layer2', 'head.fc'
    if direction == 'cnn->vit':  # ResNet teacher, ViT student
        student, teacher = vit_cfg, cnn_cfg
        distiller = mixed(vit_spot, cnn_spot, vit_logits, cnn_logits)
        shapes = ((65, 32), (32, 16, 16))
    else:
        student, teacher = classifier(8), vit(dims=32, layers=3, patch=4)
        distiller = mixed(cnn_spot, vit_spot, cnn_logits, vit_logits)
        shapes = ((32, 16, 16), (65, 32))
    model = build(
        dict(
            type='mmsakd.SpotAdaptiveDistill',
            architecture=student,
            teacher=teacher,
            distiller=distiller,
            data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor')))
    table = model.distiller.spot_table
    assert table.shapes == (shapes, )
    train_two_iterations(model)
