"""MMPretrain's SwinTransformer cut into units (embedding, one unit per
stage with the previous stage's patch merging, the output map), and a
Swin -> Swin pair made spot-adaptive with token spots."""
import pytest
import torch

from mmsakd.models.sakd import SegmentExecutor
from tests.test_models.test_algorithms.test_spot_adaptive_distill import (pair,
                                                                          rec)
from tests.test_models.test_sakd.test_vit_describer import (
    build, train_two_iterations)


def swin(dims=16, depths=(2, 2), **backbone):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(
            type='mmpretrain.SwinTransformer',
            arch=dict(
                embed_dims=dims,
                depths=list(depths),
                num_heads=[2] * len(depths)),
            img_size=32,
            patch_size=4,
            window_size=2,
            out_indices=(len(depths) - 1, ),
            **backbone),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=10,
            in_channels=dims * 2**(len(depths) - 1),
            loss=dict(type='mmpretrain.CrossEntropyLoss')))


@pytest.mark.parametrize('abs_pos', [False, True])
def test_the_units_resume_to_the_models_own_logits(abs_pos):
    model = build(swin(use_abs_pos_embed=abs_pos)).eval()
    executor = SegmentExecutor(model, (3, 32, 32))
    assert executor.names == ('backbone.drop_after_pos',
                              'backbone.stages.0.blocks.1',
                              'backbone.stages.1.blocks.1', 'backbone', 'neck',
                              'head')
    for size in (32, 64):  # other grids, the position embedding resized
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            logits = model(x, mode='tensor')
            for k in range(len(executor.names)):
                mid = executor.run(x, end=k)
                assert torch.equal(executor.run(mid, start=k), logits)
            side = size // 4
            assert executor.run(x, end=1).shape == (2, side * side, 16)
            assert executor.run(x, end=2).shape == (2, side * side // 4, 32)


def test_several_outputs_are_refused_with_the_reason():
    cfg = swin()
    cfg['backbone']['out_indices'] = (0, 1)
    with pytest.raises(TypeError, match='returns several stages'):
        SegmentExecutor(build(cfg), (3, 32, 32))


@pytest.mark.slow
def test_swin_to_swin_resolves_stage_spots_and_trains():
    distiller = dict(
        type='ConfigurableDistiller',
        # a stage returns (tokens, grid): data_idx picks the tokens
        student_recorders=dict(
            s0=rec('backbone.stages.0'), logits=rec('head.fc')),
        teacher_recorders=dict(
            s0=rec('backbone.stages.0'), logits=rec('head.fc')),
        distill_losses=dict(
            loss_sp=dict(type='mmsakd.SPLoss', loss_weight=100.0),
            loss_kd=dict(type='KLDivergence', tau=4)),
        loss_forward_mappings=dict(
            loss_sp=pair('s0', data_idx=0),
            loss_kd=pair('logits', 'preds_S', 'preds_T')))
    model = build(
        dict(
            type='mmsakd.SpotAdaptiveDistill',
            architecture=swin(dims=16),
            teacher=swin(dims=24, depths=(2, 4)),
            distiller=distiller,
            data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor')))
    table = model.distiller.spot_table
    assert table.names == (('backbone.stages.0.blocks.1',
                            'backbone.stages.0.blocks.1'), )
    assert table.shapes == (((64, 16), (64, 24)), )
    train_two_iterations(model)
