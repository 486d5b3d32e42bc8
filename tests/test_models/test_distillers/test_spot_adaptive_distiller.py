"""The distiller owns the spot table: spots resolved from the tensors the
recorders record, the errors that name the loss, the recorder and the way
out, state dict keys shared with MMRazor's distiller, and the dry-run image
shape."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn

from mmsakd.registry import MODELS
from tests.test_models.test_algorithms.test_spot_adaptive_distill import (
    AT, SWAPS, baseline, build, classifier, pair, rec, with_kd)


def spots(distiller: dict, **sakd) -> list:
    return list(build(distiller, **sakd).distiller.spot_table.names)


@pytest.mark.parametrize(
    'student, teacher, record_idx',
    [
        # a stage, its last block, the last activation of that block (whose
        # ReLU module runs twice)
        ('backbone.layer2', 'backbone.layer2.1', 0),
        ('backbone.layer2.0.relu', 'backbone.layer2.1.relu', 1),
    ])
def test_any_recorder_of_the_same_tensor_is_the_same_spot(
        student, teacher, record_idx):
    # resnet8 (student) has one block per stage, resnet14 (teacher) two
    distiller = with_kd(
        student_recorders=dict(f=rec(student)),
        teacher_recorders=dict(f=rec(teacher)),
        distill_losses=dict(loss_at=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_at=pair('f', record_idx=record_idx)))
    assert spots(distiller) == [('backbone.layer2', 'backbone.layer2')]


def test_a_view_of_a_boundary_is_that_spot():
    # the pooling inside the neck returns (N, C, 1, 1), a view of the
    # neck's (N, C) output
    distiller = with_kd(
        student_recorders=dict(f=rec('neck.gap')),
        teacher_recorders=dict(f=rec('neck')),
        distill_losses=dict(loss_pkt=dict(type='mmsakd.PKTLoss')),
        loss_forward_mappings=dict(
            loss_pkt=dict(
                s_feature=dict(from_student=True, recorder='f'),
                t_feature=dict(from_student=False, recorder='f', data_idx=0))))
    assert spots(distiller) == [('neck', 'neck')]


def test_record_idx_picks_the_call():
    # the block's ReLU runs twice; its second call is the block's output
    distiller = with_kd(
        student_recorders=dict(f=rec('backbone.layer3.0.relu')),
        teacher_recorders=dict(f=rec('backbone.layer3.1.relu')),
        distill_losses=dict(loss_at=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_at=pair('f', record_idx=1)))
    assert spots(distiller) == [('backbone.layer3', 'backbone.layer3')]
    # the first call lies inside the block: the spot of the unit's end
    distiller['loss_forward_mappings']['loss_at'] = pair('f', record_idx=0)
    assert spots(distiller) == [('backbone.layer3', 'backbone.layer3')]


def test_a_recorded_tuple_needs_data_idx():
    distiller = with_kd(
        student_recorders=dict(bb=rec('backbone')),
        teacher_recorders=dict(bb=rec('backbone')),
        distill_losses=dict(loss_at=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_at=pair('bb')))
    with pytest.raises(ValueError) as info:
        build(distiller)
    msg = str(info.value)
    assert "recorder 'bb'" in msg and "'backbone'" in msg
    assert 'returns a tuple of 1' in msg and 'data_idx' in msg
    distiller['loss_forward_mappings']['loss_at'] = pair('bb', data_idx=0)
    assert spots(distiller) == [('backbone.layer3', 'backbone.layer3')]


def test_record_idx_beyond_the_calls_is_named():
    distiller = copy.deepcopy(AT)
    distiller['loss_forward_mappings']['loss_at1'] = pair('f1', record_idx=2)
    with pytest.raises(
            ValueError, match="'loss_at1'.*record_idx=2.*does "
            'not record'):
        build(distiller)


def test_spot_overrides_and_their_errors():
    distiller = with_kd(
        student_recorders=dict(f=rec('backbone.layer2')),
        teacher_recorders=dict(f=rec('backbone.layer2')),
        distill_losses=dict(loss_at=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_at=pair('f')))
    # the override wins over the records, and takes any alias
    assert spots(
        distiller,
        spots=dict(loss_at=('backbone.layer3.0', 'backbone.layer3'))) == [
            ('backbone.layer3', 'backbone.layer3')
        ]
    with pytest.raises(
            ValueError,
            match=r"model\.sakd\.spots\['loss_at'\], "
            "teacher side: 'backbone.layer9' is not a spot"):
        build(distiller, spots=dict(loss_at=('neck', 'backbone.layer9')))
    with pytest.raises(ValueError, match='not in distill_losses'):
        build(distiller, spots=dict(loss_x=('neck', 'neck')))
    with pytest.raises(ValueError, match='pair'):
        build(distiller, spots=dict(loss_at='neck'))


def test_bad_spot_tables():
    crossed = with_kd(
        student_recorders=dict(
            a=rec('backbone.layer1'), b=rec('backbone.layer2')),
        teacher_recorders=dict(
            a=rec('backbone.layer2'), b=rec('backbone.layer1')),
        distill_losses=dict(
            loss_a=dict(type='ATLoss'), loss_b=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_a=pair('a'), loss_b=pair('b')))
    with pytest.raises(ValueError, match='different order in the teacher'):
        build(crossed)
    mixed = with_kd(
        student_recorders=dict(f=rec('neck')),
        teacher_recorders=dict(f=rec('head.fc')),
        distill_losses=dict(loss_p=dict(type='mmsakd.PKTLoss')),
        loss_forward_mappings=dict(
            loss_p=dict(
                s_feature=dict(from_student=True, recorder='f', data_idx=0),
                t_feature=dict(from_student=False, recorder='f'))))
    with pytest.raises(ValueError, match="'loss_p' reads the logits of one"):
        build(mixed)
    # both arguments read the student, at two spots
    two = with_kd(
        student_recorders=dict(
            a=rec('backbone.layer1'), b=rec('backbone.layer2')),
        distill_losses=dict(loss_a=dict(type='ATLoss')),
        loss_forward_mappings=dict(
            loss_a=dict(
                s_feature=dict(from_student=True, recorder='b'),
                t_feature=dict(from_student=True, recorder='a'))))
    with pytest.raises(
            ValueError,
            match="cannot resolve the spot of distill "
            "loss 'loss_a'.*model.sakd.spots"):
        build(two)


def test_the_spot_table_is_built_once_and_handed_on():
    model = build()
    table = model.distiller.spot_table
    routing = model.sakd_routing
    assert routing._executors == table.executors
    assert routing.spots == table.boundaries
    assert [(table.executors[0].names[s], table.executors[1].names[t])
            for s, t in routing.spots] == list(table.names)
    assert table.decisions == dict(
        loss_kd=3, loss_at1=0, loss_at2=1, loss_at3=2)
    assert table.num_decisions == 4
    assert table.spot_names == [
        'backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'logits'
    ]
    assert model.spot_names == table.spot_names
    assert model._teacher_taps.targets == [
        table.executors[1].boundary_call(b) for b in table.teacher_boundaries
    ]
    # immutable: the routing network and the taps hold the same spots
    with pytest.raises(AttributeError):
        table.boundaries = ()
    # the dry run's tensors are not kept
    held = [v for v in vars(table).values() if isinstance(v, torch.Tensor)] + [
        v for e in table.executors
        for v in vars(e).values() if isinstance(v, torch.Tensor)
    ]
    assert held == []


def state_of(model: nn.Module) -> dict:
    return {
        k: v
        for k, v in model.state_dict().items()
        if k.startswith('distiller.distill_losses.')
    }


def test_distill_loss_state_keys_are_mmrazors():
    cfg = SWAPS['crd']
    sakd = build(cfg)
    base = baseline(cfg)
    keys = list(state_of(base))
    assert 'distiller.distill_losses.loss_crd.contrast.memory_v1' in keys
    assert list(state_of(sakd)) == keys
    # a baseline checkpoint's CRD memory loads into the SAKD model (the
    # SAKD-only parameters aside), and back
    with torch.no_grad():
        base.distiller.distill_losses.loss_crd.contrast.memory_v1.fill_(0.5)
    missing, unexpected = sakd.load_state_dict(base.state_dict(), strict=False)
    assert unexpected == []
    assert all(
        k.startswith(('sakd_policy.', 'sakd_routing.')) for k in missing)
    memory = sakd.distiller.distill_losses.loss_crd.contrast.memory_v1
    assert torch.all(memory == 0.5)
    with torch.no_grad():
        memory.fill_(0.25)
    sakd_state = {
        k: v
        for k, v in sakd.state_dict().items()
        if not k.startswith(('sakd_policy.', 'sakd_routing.'))
    }
    base.load_state_dict(sakd_state, strict=True)
    assert torch.all(
        base.distiller.distill_losses.loss_crd.contrast.memory_v1 == 0.25)


class Needs224(nn.Module):
    """A backbone whose classifier input is fixed to 224x224 images."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 32, stride=32)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 7 * 7, 8)

    def forward(self, x):
        return (self.fc(self.flatten(self.conv(x))), )


def needs_224_distill(**sakd) -> nn.Module:

    def net():
        model = classifier(8)
        model['backbone'] = dict(type='mmsakd.Needs224')
        model['head']['in_channels'] = 8
        model.pop('neck')
        return model

    with DefaultScope.overwrite_default_scope('mmsakd'):
        if 'Needs224' not in MODELS.module_dict:
            MODELS.register_module(module=Needs224)
        return MODELS.build(
            dict(
                type='mmsakd.SpotAdaptiveDistill',
                architecture=net(),
                teacher=net(),
                distiller=with_kd(),
                data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
                sakd=sakd))


def test_input_shape_from_the_config_or_a_clear_error():
    with pytest.raises(ValueError) as info:
        needs_224_distill()
    msg = str(info.value)
    assert 'model.sakd.input_shape (not set; tried (3, 32, 32))' in msg
    assert 'student fails on images of that shape' in msg
    model = needs_224_distill(input_shape=(3, 224, 224))
    assert model.sakd_policy.fc.in_features == 16
    x = torch.randn(2, 3, 224, 224)
    labels = torch.tensor([0, 1])
    from mmpretrain.structures import DataSample
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    losses = model.loss(x, samples)
    assert torch.isfinite(losses['sakd.loss_route'])


@pytest.mark.parametrize('shape, match', [
    ((1, 32, 32), r'input_shape=\(1, 32, 32\): the student fails'),
    ((32, 32), 'expected the \\(channels, height, width\\)'),
    ('32', 'expected the'),
    ((3, 0, 32), 'expected the'),
])
def test_bad_input_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        build(input_shape=shape)


def test_adapters_that_depend_on_the_image_size_are_refused():
    distiller = with_kd(
        student_recorders=dict(f=rec('backbone.layer3')),
        teacher_recorders=dict(f=rec('backbone.layer2')),
        distill_losses=dict(loss_at=dict(type='ATLoss')),
        loss_forward_mappings=dict(loss_at=pair('f')))
    # student 8x8 vs teacher 16x16 at 32px, 16x16 vs 32x32 at 64px: the
    # same transposed conv, so fine without input_shape
    assert spots(distiller) == [('backbone.layer3', 'backbone.layer2')]
    with DefaultScope.overwrite_default_scope('mmsakd'):
        odd = dict(type='mmsakd.CIFARVGG', depth=8)
        student = classifier(8)
        student['backbone'] = odd
        student['head']['in_channels'] = 512
        distiller = with_kd(
            student_recorders=dict(f=rec('backbone.layer4')),
            teacher_recorders=dict(f=rec('backbone.layer3')),
            distill_losses=dict(loss_l2=dict(type='L2Loss')),
            loss_forward_mappings=dict(loss_l2=pair('f')))
        cfg = dict(
            type='mmsakd.SpotAdaptiveDistill',
            architecture=student,
            teacher=classifier(14),
            distiller=distiller,
            data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'))
        # vgg8's layer4 pools only maps of 8 pixels or more (the reference's
        # Tiny-ImageNet rule): 4x4 at 32px but 4x4 at 64px too, against the
        # teacher's 8x8 and 16x16
        with pytest.raises(ValueError) as info:
            MODELS.build(cfg)
        msg = str(info.value)
        assert 'depend on the image size' in msg
        assert 'model.sakd.input_shape' in msg
        cfg['sakd'] = dict(input_shape=(3, 32, 32))
        model = MODELS.build(cfg)
    assert list(model.distiller.spot_table.names) == [('backbone.layer4',
                                                       'backbone.layer3')]
    assert model.sakd_routing.hints[0].dst_shape == (64, 8, 8)
    assert model.sakd_routing.hints[0].src_shape == (512, 4, 4)
