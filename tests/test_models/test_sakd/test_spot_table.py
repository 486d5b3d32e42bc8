"""Spot resolution without an MMRazor algorithm: two classifiers, their
recorders and the loss mappings are all :func:`build_spot_table` needs."""
import dataclasses

import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.models.task_modules.recorder import RecorderManager

from mmsakd.models.sakd import SpotTable, build_spot_table
from mmsakd.models.sakd.spot_table import input_shapes, pooled_record
from mmsakd.registry import MODELS
from tests.test_models.test_algorithms.test_spot_adaptive_distill import \
    classifier as classifier_cfg

POOL = 'pool'


def classifier(depth):
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(classifier_cfg(depth))


def recorders(model, **sources):
    cfg = {
        name: dict(type='ModuleOutputs', source=src)
        for name, src in sources.items()
    }
    cfg[POOL] = dict(type='ModuleInputs', source='head')
    manager = RecorderManager(cfg)
    manager.initialize(model)
    return manager


def mapping(recorder, s_key='s_feature', t_key='t_feature', **extra):
    return {
        s_key: dict(from_student=True, recorder=recorder, **extra),
        t_key: dict(from_student=False, recorder=recorder, **extra)
    }


def table_of(student_sources, teacher_sources, mappings, **kwargs):
    student, teacher = classifier(8), classifier(14)
    managers = (recorders(student, **student_sources),
                recorders(teacher, **teacher_sources))
    return build_spot_table((student, teacher),
                            managers,
                            mappings,
                            list(mappings),
                            POOL,
                            head_input=True,
                            **kwargs)


def test_spots_resolve_from_recorders_alone():
    table = table_of(
        dict(a='backbone.layer2', b='backbone.layer1.0', z='head.fc'),
        # the teacher (resnet14) has two blocks per stage: its last block
        # and its ReLU's second call are the stage's tensor
        dict(a='backbone.layer2.1', b='backbone.layer1', z='head.fc'),
        dict(
            loss_a=mapping('a'),
            loss_b=mapping('b'),
            loss_kd=mapping('z', 'preds_S', 'preds_T')))
    assert isinstance(table, SpotTable)
    assert table.names == (('backbone.layer1', 'backbone.layer1'),
                           ('backbone.layer2', 'backbone.layer2'))
    assert table.decisions == dict(loss_a=1, loss_b=0, loss_kd=2)
    assert table.num_decisions == 3
    assert table.spot_names == ['backbone.layer1', 'backbone.layer2', 'logits']
    assert table.shapes == (((16, 32, 32), (16, 32, 32)), ((32, 16, 16),
                                                           (32, 16, 16)))
    assert table.pool_channels == 64 + 64
    student, teacher = table.executors
    assert [student.names[s] for s, _ in table.boundaries] == \
        [s for s, _ in table.names]
    assert table.teacher_boundaries[-1] == teacher.logits_index
    # one immutable object
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.names = ()
    decisions = table.decisions
    decisions['loss_a'] = 0
    assert table.decisions['loss_a'] == 1


def test_losses_at_the_same_pair_share_one_decision():
    table = table_of(
        dict(a='backbone.layer3', b='backbone.layer3.0'),
        dict(a='backbone.layer3', b='backbone.layer3.1'),
        dict(loss_a=mapping('a'), loss_b=mapping('b')))
    assert table.names == (('backbone.layer3', 'backbone.layer3'), )
    assert table.decisions == dict(loss_a=0, loss_b=0)
    # the logits spot is always the last decision, even unread
    assert table.num_decisions == 2


def test_overrides_and_errors_name_the_config_key():
    with pytest.raises(
            ValueError, match=r"model\.sakd\.spots names losses "
            r"\['loss_x'\]"):
        table_of(
            dict(a='backbone.layer2'),
            dict(a='backbone.layer2'),
            dict(loss_a=mapping('a')),
            overrides=dict(loss_x=('neck', 'neck')))
    table = table_of(
        dict(a='backbone.layer2'),
        dict(a='backbone.layer2'),
        dict(loss_a=mapping('a')),
        overrides=dict(loss_a=('neck', 'neck')))
    assert table.names == (('neck', 'neck'), )
    with pytest.raises(ValueError, match='not a segment boundary'):
        table_of(
            dict(a='backbone.layer2.0.conv1'), dict(a='backbone.layer2'),
            dict(loss_a=mapping('a')))


def test_input_shapes_and_pooled_records():
    assert input_shapes(None) == [(3, 32, 32), (3, 64, 64)]
    assert input_shapes([3, 8, 8]) == [(3, 8, 8)]
    for bad in ((3, 8), (3, 8, True), (3, -1, 8), '3x8x8'):
        with pytest.raises(ValueError, match='model.sakd.input_shape'):
            input_shapes(bad)
    feats = torch.randn(2, 4)
    assert pooled_record(((feats, ), ), head_input=True) is feats
    assert pooled_record((feats.neg(), feats), head_input=False) is feats
    assert pooled_record(feats, head_input=False) is feats
