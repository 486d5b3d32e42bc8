"""SAKD's spot table: where each distill loss decides and routes.

Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022
(arXiv 2205.02399). Each distill loss reads a student record and a teacher
record; the spot of the loss is the pair of segment boundaries whose
tensors those records are. :func:`build_spot_table` cuts both networks
(:class:`~mmsakd.models.sakd.executor.SegmentExecutor`), runs one dry
pass per network with the MMRazor recorders active, resolves every loss to
its spot from the tensors the recorders really hold -- whatever the
recorder's module path, ``record_idx`` or the mapping's ``data_idx`` -- and
returns one immutable :class:`SpotTable` that the distiller, the routing
network and the teacher taps share. It needs recorders, models and
mappings, not an MMRazor algorithm.

A record inside a unit (e.g. MMRazor's FactorTransfer config records
``backbone.layer4.1.conv2``, before the block's BN and residual sum) is no
boundary; the loss keeps reading exactly that tensor, and its decision and
routing are those of the next boundary, the end of the unit the tensor lies
in (``backbone.layer4``). A distill loss without a forward mapping is never
computed, by MMRazor or here: it gets no spot, with one warning. The
resolved spot of every loss is logged at build time.
"""
import logging
from dataclasses import dataclass
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmrazor.models.task_modules.recorder import (ModuleInputsRecorder,
                                                  ModuleOutputsRecorder,
                                                  RecorderManager)
from torch import Tensor, nn

from .adapters import adapter_spec
from .executor import Probe, SegmentExecutor

Shape = Tuple[int, ...]
Spot = Tuple[int, int]  # (student boundary, teacher boundary)
# Dry-run image sizes when model.sakd.input_shape is not set: two sizes, so
# that adapters (and the policy input) that would depend on the image size
# are found at build time.
AUTO_INPUT_SHAPES = ((3, 32, 32), (3, 64, 64))
SIDES = ('student', 'teacher')


@dataclass(frozen=True)
class SpotTable:
    """The resolved spots of a SAKD model (built by
    :func:`build_spot_table`, read by everything else).

    Attributes:
        executors (tuple[SegmentExecutor, SegmentExecutor]): Student and
            teacher, cut into segments.
        boundaries (tuple[tuple[int, int], ...]): The feature spots as
            (student, teacher) boundary indices, in execution order; the
            logits spot is implicit and last.
        names (tuple[tuple[str, str], ...]): Their canonical module paths.
        shapes (tuple[tuple[Shape, Shape], ...]): (student, teacher) shape
            at each feature spot, without the batch dimension.
        loss_decisions (tuple[tuple[str, int], ...]): ``(loss name, gate
            column)`` of every distill loss (see :attr:`decisions`).
        pool_channels (int): Size of the policy's input, teacher plus
            student pooled features.
    """
    executors: Tuple[SegmentExecutor, SegmentExecutor]
    boundaries: Tuple[Spot, ...]
    names: Tuple[Tuple[str, str], ...]
    shapes: Tuple[Tuple[Shape, Shape], ...]
    loss_decisions: Tuple[Tuple[str, int], ...]
    pool_channels: int

    @property
    def decisions(self) -> Dict[str, int]:
        """dict: Loss name -> gate column (a copy)."""
        return dict(self.loss_decisions)

    @property
    def num_decisions(self) -> int:
        """int: Feature spots plus the logits spot."""
        return len(self.boundaries) + 1

    @property
    def spot_names(self) -> List[str]:
        """list[str]: The student's name of every decision, ``'logits'``
        last."""
        return [s for s, _ in self.names] + ['logits']

    @property
    def teacher_boundaries(self) -> List[int]:
        """list[int]: The teacher's boundary of every decision (its logits
        last)."""
        return [t for _, t in self.boundaries
                ] + [self.executors[1].logits_index]


def pooled_record(data, head_input: bool) -> Tensor:
    """The pooled feature vector in a pooling recorder's record: the head's
    inputs are ``(feats, )``, and MMPretrain necks and backbones return a
    tuple whose last element the head reads."""
    if head_input:
        data = data[0]
    return data[-1] if isinstance(data, (tuple, list)) else data


class _Resolver:
    """Resolution of every loss's records to boundaries in one dry run."""

    def __init__(self, executors, recorders, probes):
        self.executors = executors
        self.recorders = recorders
        self.probes = probes
        # loss -> [(side, recorder source, boundary, inside a unit)]
        self.resolved: Dict[str, List[Tuple[int, str, int, bool]]] = {}

    def spot_text(self, spot: Spot) -> str:
        return (f'student {self.executors[0].names[spot[0]]!r}, teacher '
                f'{self.executors[1].names[spot[1]]!r}')

    def override(self, name: str, spot) -> Spot:
        if not (isinstance(spot, (tuple, list)) and len(spot) == 2):
            raise ValueError(
                f'model.sakd.spots[{name!r}]={spot!r}: expected a (student '
                'path, teacher path) pair')
        indices = []
        for executor, path, who in zip(self.executors, spot, SIDES):
            try:
                indices.append(executor.index(path))
            except ValueError as err:
                raise ValueError(f'model.sakd.spots[{name!r}], {who} side: '
                                 f'{err}') from err
        return tuple(indices)

    def loss(self, name: str, mapping: Mapping) -> Spot:
        found = {True: set(), False: set()}
        for arg, record in mapping.items():
            if not (isinstance(record, dict) and 'recorder' in record):
                continue
            side = bool(record['from_student'])
            index = self.record(name, arg, record)
            if index is not None:
                found[side].add(index)
        if len(found[True]) != 1 or len(found[False]) != 1:
            names = [e.names for e in self.executors]
            raise ValueError(
                f'cannot resolve the spot of distill loss {name!r}: it '
                'reads student spots '
                f'{sorted(names[0][i] for i in found[True])} and teacher '
                f'spots {sorted(names[1][i] for i in found[False])}; a spot '
                'is one student and one teacher segment boundary. Set '
                f'model.sakd.spots={{{name!r}: (student path, teacher '
                'path)}.')
        return found[True].pop(), found[False].pop()

    def record(self, loss: str, arg: str, record: dict) -> Optional[int]:
        """The boundary of one record (kept in :attr:`resolved`), or None
        for batch data."""
        side = 0 if record['from_student'] else 1
        who, executor, probe = SIDES[side], self.executors[side], \
            self.probes[side]
        recorder = self.recorders[side].get_recorder(record['recorder'])
        record_idx = record.get('record_idx', 0)
        data_idx = record.get('data_idx')
        where = (f'distill loss {loss!r} reads {arg!r} from {who} recorder '
                 f'{record["recorder"]!r} ({type(recorder).__name__} of '
                 f'{recorder.source!r}, record_idx={record_idx}, '
                 f'data_idx={data_idx})')
        try:
            data = recorder.get_record_data(record_idx, data_idx)
        except (AssertionError, IndexError, KeyError, TypeError) as err:
            if isinstance(recorder, ModuleInputsRecorder):
                # inputs of a module the logits do not need, e.g. DKD's
                # labels at the head's loss: batch data
                return None
            raise ValueError(
                f'{where}, which one forward does not record ({err}); '
                'check record_idx and data_idx') from err
        index = executor.match(data, probe)
        if index is not None:
            return self._resolve(loss, side, recorder, index, False)
        is_input = isinstance(recorder, ModuleInputsRecorder)
        if isinstance(data, (tuple, list)) and not is_input:
            raise ValueError(
                f'{where}, which returns a {type(data).__name__} of '
                f'{len(data)}, not one tensor: pick one element with '
                'data_idx in loss_forward_mappings')
        if isinstance(data, Tensor) and isinstance(
                recorder, (ModuleOutputsRecorder, ModuleInputsRecorder)):
            # a tensor inside a unit: the loss reads it, its decision and
            # routing are those of the next boundary
            index = executor.next_boundary(data, probe, recorder.source,
                                           record_idx, is_input)
            if index is not None:
                return self._resolve(loss, side, recorder, index, True)
        if is_input:
            return None  # batch data: labels, data samples, the image
        if isinstance(recorder, ModuleOutputsRecorder) and isinstance(
                data, Tensor):
            raise ValueError(
                f'{where}, which is not a segment boundary of the {who} '
                'and lies in no unit that ends at one (a spot must be a '
                'tensor after which the network can be cut and resumed); '
                f'{executor.nearest(data, probe)}')
        raise ValueError(
            f'{where}, which is not a segment boundary of the {who}: SAKD '
            'cuts the networks at module outputs. Record a module output '
            f'or set model.sakd.spots={{{loss!r}: (student path, teacher '
            'path)}')

    def _resolve(self, loss: str, side: int, recorder, index: int,
                 inside: bool) -> int:
        self.resolved.setdefault(loss, []).append(
            (side, str(recorder.source), index, inside))
        return index

    def order(self, loss_spots: Dict[str, Spot]) -> List[Spot]:
        """The feature spots in execution order, checked."""
        logits = tuple(e.logits_index for e in self.executors)
        features = {}
        for name, spot in loss_spots.items():
            if spot[0] == logits[0] or spot[1] == logits[1]:
                if spot != logits:
                    raise ValueError(
                        f'distill loss {name!r} reads the logits of one '
                        'network and a feature of the other '
                        f'({self.spot_text(spot)}); the logits spot pairs '
                        'the logits of both')
                continue
            features[spot] = None
        spots = sorted(features)
        teacher_order = [t for _, t in spots]
        if (teacher_order != sorted(teacher_order)
                or len(set(teacher_order)) != len(teacher_order)):
            raise ValueError(
                'the feature spots are in a different order in the teacher '
                'than in the student: '
                f'{[self.spot_text(s) for s in spots]}; SAKD routes through '
                'matching segments, each spot must come after the previous '
                'one in both networks')
        if len({s for s, _ in spots}) != len(spots):
            raise ValueError(
                'one student spot is paired with several teacher spots: '
                f'{[self.spot_text(s) for s in spots]}; each spot is one '
                '(student, teacher) pair')
        return spots


class _Sizes(NamedTuple):
    shapes: List[Tuple[Shape, Shape]]
    pool: int


def input_shapes(input_shape) -> List[Shape]:
    """The dry-run image shapes: ``model.sakd.input_shape`` checked, or
    :data:`AUTO_INPUT_SHAPES`."""
    if input_shape is None:
        return [tuple(s) for s in AUTO_INPUT_SHAPES]
    shape = tuple(input_shape) if isinstance(input_shape,
                                             (tuple, list)) else ()
    if len(shape) != 3 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1
            for s in shape):
        raise ValueError(
            f'model.sakd.input_shape={input_shape!r}: expected the '
            '(channels, height, width) of the training images, e.g. '
            '(3, 224, 224), or None to find the shapes by itself')
    return [shape]


def _input_shape_error(input_shape, who: str, err: Exception) -> ValueError:
    shown = (f'={tuple(input_shape)}' if input_shape is not None else
             f' (not set; tried {AUTO_INPUT_SHAPES[0]})')
    return ValueError(
        f'model.sakd.input_shape{shown}: the {who} fails on images of '
        f'that shape ({type(err).__name__}: {err}). Set '
        'model.sakd.input_shape to the (channels, height, width) of the '
        'training images')


def _check_size_independent(per_size: List[_Sizes], names, pool_source):
    sizes = AUTO_INPUT_SHAPES
    first = per_size[0]
    for other in per_size[1:]:
        if other.pool != first.pool:
            raise ValueError(
                f'model.sakd.pool_source={pool_source!r} gives '
                f'{first.pool} policy inputs at {sizes[0]} and {other.pool} '
                f'at {sizes[1]}: it must be a pooled vector; name the '
                'pooling module, or set model.sakd.input_shape to the '
                'training image shape')
        for name, a, b in zip(names, first.shapes, other.shapes):
            for src, dst in ((0, 1), (1, 0)):
                if adapter_spec(a[src],
                                a[dst]) != adapter_spec(b[src], b[dst]):
                    raise ValueError(
                        f'the adapters at spot {name} depend on the image '
                        f'size (shapes {a} at {sizes[0]}, {b} at '
                        f'{sizes[1]}): set model.sakd.input_shape to the '
                        '(channels, height, width) of the training images')


def _log_spots(loss_spots, decisions, resolver, executors, overrides):
    """One line per distill loss: its decision, its spot and, for a record
    inside a unit, the tensor it reads."""
    decisions = dict(decisions)
    for name, spot in loss_spots.items():
        if name in overrides:
            how = ' (model.sakd.spots)'
        else:
            inner = [(side, source, executors[side].names[index])
                     for side, source, index, inside in resolver.resolved.get(
                         name, []) if inside]
            how = ''.join(
                f'; the {SIDES[side]} record of {source!r} lies inside the '
                f'unit that ends at {end!r}: the loss reads it, the spot is '
                f'{end!r}' for side, source, end in inner)
        print_log(
            f'SAKD: distill loss {name!r} -> decision {decisions[name]} at '
            f'student {executors[0].names[spot[0]]!r}, teacher '
            f'{executors[1].names[spot[1]]!r}{how}',
            logger='current')


def build_spot_table(models: Tuple[nn.Module, nn.Module],
                     recorders: Tuple[RecorderManager, RecorderManager],
                     loss_forward_mappings: Mapping[str, Mapping],
                     losses: Sequence[str],
                     pool_recorder: str,
                     head_input: bool,
                     overrides: Optional[Mapping[str, Sequence[str]]] = None,
                     input_shape: Optional[Sequence[int]] = None,
                     pool_source: Optional[str] = None) -> SpotTable:
    """Cut both networks into segments and resolve the spot table.

    One dry run per network and image size (eval mode, no grad, a private
    random generator) verifies the cuts and resolves every loss's records
    to boundaries: the boundary whose output is the recorded tensor (or a
    view of it), else, for a module's output or input inside a unit, the
    next boundary after that module's call. Other records are batch data
    when they come from ``ModuleInputs`` recorders (CRD's data samples,
    DKD's labels, the image) and an error otherwise. Losses without a
    forward mapping get no decision. Losses that read the same pair of
    boundaries share one decision; feature spots are ordered by execution,
    and the logits spot is always the last decision, even if no loss reads
    it.

    Args:
        models (tuple[nn.Module, nn.Module]): Student and teacher
            classifiers.
        recorders (tuple[RecorderManager, RecorderManager]): Their
            initialised MMRazor recorders (their buffers hold the last dry
            run afterwards).
        loss_forward_mappings (Mapping): MMRazor's mappings, loss name ->
            forward argument -> record.
        losses (Sequence[str]): The distill losses, in order.
        pool_recorder (str): Name of the recorder of the policy's pooled
            input (on both sides).
        head_input (bool): Whether that recorder records the head's inputs
            (see :func:`pooled_record`).
        overrides (Mapping, optional): ``model.sakd.spots``, loss name ->
            (student path, teacher path).
        input_shape (Sequence[int], optional): ``model.sakd.input_shape``,
            (C, H, W) of the training images; None tries
            :data:`AUTO_INPUT_SHAPES`.
        pool_source (str, optional): ``model.sakd.pool_source``, for
            messages.

    Returns:
        SpotTable: The resolved table.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(losses)
    if unknown:
        raise ValueError(
            f'model.sakd.spots names losses {sorted(unknown)} that are '
            f'not in distill_losses {sorted(losses)}')
    # a loss without a forward mapping is never called (MMRazor's
    # ConfigurableDistiller computes the mapped losses only): no spot
    dead = [n for n in losses if not loss_forward_mappings.get(n)]
    if dead:
        if set(dead) & set(overrides):
            raise ValueError(
                f'model.sakd.spots names losses '
                f'{sorted(set(dead) & set(overrides))} that have no entry in '
                'distiller.loss_forward_mappings: they are never computed. '
                'Add their mapping, or drop them from model.sakd.spots')
        print_log(
            f'SAKD: distill losses {dead} have no entry in '
            'distiller.loss_forward_mappings; MMRazor never computes them, '
            'and they get no spot (ignored). Remove them from '
            'distiller.distill_losses to silence this warning.',
            logger='current',
            level=logging.WARNING)
        losses = [n for n in losses if n not in dead]
    shapes = input_shapes(input_shape)
    executors = []
    for model, who in zip(models, SIDES):
        try:
            executors.append(SegmentExecutor(model, shapes[0]))
        except RuntimeError as err:
            raise _input_shape_error(input_shape, who, err) from err
    executors = tuple(executors)

    def dry_run(shape) -> Tuple[Probe, ...]:
        probes = []
        for executor, manager, who in zip(executors, recorders, SIDES):
            try:
                probes.append(
                    executor.probe(executor.dry_input(shape), manager))
            except RuntimeError as err:
                raise _input_shape_error(input_shape, who, err) from err
        return tuple(probes)

    def sizes(probes, spots) -> _Sizes:
        s_shapes, t_shapes = (e.shapes_of(p)
                              for e, p in zip(executors, probes))
        pool = sum(
            int(
                pooled_record(
                    manager.get_recorder(pool_recorder).get_record_data(),
                    head_input)[0].numel()) for manager in recorders)
        return _Sizes([(s_shapes[s], t_shapes[t]) for s, t in spots], pool)

    probes = dry_run(shapes[0])
    resolver = _Resolver(executors, recorders, probes)
    loss_spots = {
        name:
        resolver.override(name, overrides[name]) if name in overrides else
        resolver.loss(name, loss_forward_mappings.get(name, {}))
        for name in losses
    }
    spots = resolver.order(loss_spots)
    logits = tuple(e.logits_index for e in executors)
    decisions = tuple(
        (name, len(spots) if spot == logits else spots.index(spot))
        for name, spot in loss_spots.items())
    names = tuple(
        (executors[0].names[s], executors[1].names[t]) for s, t in spots)
    _log_spots(loss_spots, decisions, resolver, executors, overrides)
    per_size = [sizes(probes, spots)]
    del probes, resolver  # the dry run's tensors
    for shape in shapes[1:]:
        per_size.append(sizes(dry_run(shape), spots))
    _check_size_independent(per_size, names, pool_source)
    return SpotTable(
        executors=executors,
        boundaries=tuple(spots),
        names=names,
        shapes=tuple(per_size[0].shapes),
        loss_decisions=decisions,
        pool_channels=per_size[0].pool)
