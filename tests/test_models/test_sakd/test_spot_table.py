"""Spot resolution without an MMRazor algorithm: two classifiers, their
recorders and the loss mappings are all :func:`build_spot_table` needs."""
import dataclasses

import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.models.task_modules.recorder import RecorderManager

from mmsakd.models.sakd import SpotTable, build_spot_table
from mmsakd.models.sakd.executor import SegmentExecutor
from mmsakd.models.sakd.spot_table import input_shapes, pooled_record
from mmsakd.registry import MODELS
from tests.test_models.test_algorithms.test_spot_adaptive_distill import \
    classifier as classifier_cfg

POOL = 'pool'


def classifier(depth):
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(classifier_cfg(depth))


def recorders(model, inputs=(), **sources):
    cfg = {
        name:
        dict(
            type='ModuleInputs' if name in inputs else 'ModuleOutputs',
            source=src)
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


def table_of(student_sources,
             teacher_sources,
             mappings,
             losses=None,
             inputs=(),
             **kwargs):
    student, teacher = classifier(8), classifier(14)
    managers = (recorders(student, inputs, **student_sources),
                recorders(teacher, inputs, **teacher_sources))
    return build_spot_table((student, teacher),
                            managers,
                            mappings,
                            list(mappings) if losses is None else losses,
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


def test_next_boundary_of_a_tensor_inside_a_unit():
    executor = SegmentExecutor(classifier(8), (3, 32, 32))
    probe = executor.probe(executor.dry_input((3, 32, 32)))
    conv = next(out for path, out in probe.calls
                if path == 'backbone.layer2.0.conv1')
    layer2 = executor.index('backbone.layer2')
    assert executor.next_boundary(conv, probe,
                                  'backbone.layer2.0.conv1') == layer2
    assert executor.next_boundary(
        conv, probe, 'backbone.layer2.0.conv2', 0, is_input=True) == layer2
    # a call the forward does not make, and the image: no boundary
    assert executor.next_boundary(conv, probe, 'backbone.layer2.0.conv1',
                                  1) is None
    assert executor.next_boundary(conv, probe, 'no.such.module') is None
    assert executor.next_boundary(
        probe.image, probe, 'backbone', is_input=True) is None


def test_a_record_inside_a_unit_takes_the_spot_of_the_units_end(mmengine_log):
    # the first conv of a block and the stage's first ReLU call (record_idx
    # picks the call): inside backbone.layer2 of both networks
    table = table_of(
        dict(a='backbone.layer2.0.conv1', b='backbone.layer3.0.relu'),
        dict(a='backbone.layer2.1.conv2', b='backbone.layer3.0.relu'),
        dict(loss_a=mapping('a'), loss_b=mapping('b', record_idx=0)))
    assert table.names == (('backbone.layer2', 'backbone.layer2'),
                           ('backbone.layer3', 'backbone.layer3.0'))
    assert table.decisions == dict(loss_a=0, loss_b=1)
    assert ("SAKD: distill loss 'loss_a' -> decision 0 at student "
            "'backbone.layer2', teacher 'backbone.layer2'; the student "
            "record of 'backbone.layer2.0.conv1' lies inside the unit that "
            "ends at 'backbone.layer2': the loss reads it, the spot is "
            "'backbone.layer2'; the teacher record of 'backbone.layer2.1."
            "conv2' lies inside the unit that ends at 'backbone.layer2'"
            ) in mmengine_log.text
    # a module's input inside a unit too; the image itself is batch data
    table = table_of(
        dict(a='backbone.layer2.0.conv2', img='backbone'),
        dict(a='backbone.layer2.1.conv2', img='backbone'),
        dict(loss_a=mapping('a', data_idx=0)),
        inputs=('a', 'img'))
    assert table.names == (('backbone.layer2', 'backbone.layer2'), )


def test_records_of_one_loss_at_two_units_are_refused():
    with pytest.raises(
            ValueError,
            match="cannot resolve the spot of distill loss "
            "'loss_a'"):
        table_of(
            dict(a='backbone.layer2.0.conv1', b='backbone.layer3'),
            dict(a='backbone.layer2.1.conv2', b='backbone.layer2'),
            dict(
                loss_a=dict(
                    s_feature=dict(from_student=True, recorder='a'),
                    s_other=dict(from_student=True, recorder='b'),
                    t_feature=dict(from_student=False, recorder='a'))))
    # inside the same unit as another loss's spot, but paired with another
    # teacher spot: today's message
    with pytest.raises(ValueError, match='one student spot is paired'):
        table_of(
            dict(a='backbone.layer2.0.conv1', b='backbone.layer2'),
            dict(a='backbone.layer2.1.conv2', b='backbone.layer2.0'),
            dict(loss_a=mapping('a'), loss_b=mapping('b')))


def test_a_loss_without_a_mapping_is_ignored_with_one_warning(
        mmengine_warnings):
    table = table_of(
        dict(a='backbone.layer2'),
        dict(a='backbone.layer2'),
        dict(loss_a=mapping('a')),
        losses=['loss_pretrain', 'loss_a'])
    assert table.decisions == dict(loss_a=0)
    assert mmengine_warnings.text.count('loss_pretrain') == 1
    assert ("SAKD: distill losses ['loss_pretrain'] have no entry in "
            'distiller.loss_forward_mappings; MMRazor never computes them, '
            'and they get no spot (ignored).') in mmengine_warnings.text
    with pytest.raises(
            ValueError,
            match=r"model\.sakd\.spots names losses "
            r"\['loss_pretrain'\] that have no entry"):
        table_of(
            dict(a='backbone.layer2'),
            dict(a='backbone.layer2'),
            dict(loss_a=mapping('a')),
            losses=['loss_pretrain', 'loss_a'],
            overrides=dict(loss_pretrain=('neck', 'neck')))


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
