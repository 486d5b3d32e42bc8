"""A ConfigurableDistiller whose losses are gated per sample and per spot."""
import copy
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.task_modules.recorder import (ModuleInputsRecorder,
                                                  ModuleOutputsRecorder)
from torch import Tensor, nn
from torch.utils._pytree import tree_map_only

from mmsakd.registry import MODELS
from ..losses.spot_wise_loss import SpotWiseLoss
from ..sakd.adapters import adapter_spec
from ..sakd.segments import Probe, SegmentExecutor

Shape = Tuple[int, ...]
POOL_RECORDER = '_sakd_pool'
LOGITS_RECORDER = '_sakd_logits'
MODES = ('subset', 'mask')
# Dry-run image sizes when model.sakd.input_shape is not set: two sizes, so
# that adapters (and the policy input) that would depend on the image size
# are found at build time.
AUTO_INPUT_SHAPES = ((3, 32, 32), (3, 64, 64))


class _Resolved(NamedTuple):
    spots: List[Tuple[int, int]]  # feature spots, (student, teacher)
    decisions: Dict[str, int]  # loss name -> gate column


@MODELS.register_module()
class SpotAdaptiveDistiller(ConfigurableDistiller):
    """MMRazor's ``ConfigurableDistiller`` with SAKD's per-sample spot gates.

    J. Song, Y. Chen, J. Ye and M. Song, "Spot-adaptive Knowledge
    Distillation", IEEE TIP 31, 2022, https://arxiv.org/abs/2205.02399.

    Takes exactly the arguments of ``ConfigurableDistiller`` (so any MMRazor
    distiller config becomes spot-adaptive unchanged) and

    * wraps every distill loss that is not already a
      :class:`~mmsakd.models.losses.SpotWiseLoss` into one with
      ``loss_mode``, so each loss is restricted to the samples the policy
      selected at its spot (the state dict keys stay MMRazor's);
    * owns the spot table (:meth:`build_spots`): it cuts both networks into
      segments (:class:`~mmsakd.models.sakd.SegmentExecutor`) and resolves
      the spot of every loss from the tensors its recorders really record in
      one dry run -- the segment boundary whose output is that tensor (or a
      view of it), whatever the recorder's module path, ``record_idx`` or
      the mapping's ``data_idx``. Records that are no boundary's tensor are
      batch data when they come from ``ModuleInputs`` recorders (CRD's data
      samples, DKD's labels) and an error otherwise. Losses that read the
      same pair of boundaries share one decision; feature spots are ordered
      by execution, and the logits spot is always the last decision, even if
      no loss reads it. ``spots`` overrides the resolution per loss;
    * passes each spot's column of the gates to its losses
      (:meth:`compute_distill_losses`).

    Args:
        loss_mode (str): ``'subset'`` (the method, default) or ``'mask'``;
            see ``SpotWiseLoss``.
        spots (dict, optional): ``{loss name: (student path, teacher
            path)}`` for losses whose spot cannot be resolved or should
            differ; any module path whose output is a boundary's tensor.
        pool_source (str, optional): Module path whose output is the
            pooled penultimate feature vector, the policy's input. Defaults
            to None: the head's input, i.e. the neck's output, or the
            backbone's for a classifier without neck.
        **kwargs: The arguments of ``ConfigurableDistiller``.
    """

    def __init__(self,
                 loss_mode: str = 'subset',
                 spots: Optional[Dict[str, Sequence[str]]] = None,
                 pool_source: Optional[str] = None,
                 student_recorders: Optional[dict] = None,
                 teacher_recorders: Optional[dict] = None,
                 distill_losses: Optional[dict] = None,
                 **kwargs) -> None:
        if loss_mode not in MODES:
            raise ValueError(f'model.sakd.loss_mode must be one of {MODES}, '
                             f'got {loss_mode!r}')
        self.loss_mode = loss_mode
        self.pool_source = pool_source
        self._spot_overrides = dict(spots or {})
        pool = (
            dict(type='ModuleInputs', source='head') if pool_source is None
            else dict(type='ModuleOutputs', source=pool_source))
        student_recorders = dict(student_recorders or {})
        teacher_recorders = dict(teacher_recorders or {})
        student_recorders[POOL_RECORDER] = pool
        teacher_recorders[POOL_RECORDER] = copy.deepcopy(pool)
        # the student's logits, for the routing loss's comparison
        student_recorders[LOGITS_RECORDER] = dict(
            type='ModuleOutputs', source='head')
        super().__init__(
            student_recorders=student_recorders,
            teacher_recorders=teacher_recorders,
            distill_losses=distill_losses,
            **kwargs)
        unknown = set(self._spot_overrides) - set(self.distill_losses)
        if unknown:
            raise ValueError(
                f'model.sakd.spots names losses {sorted(unknown)} that are '
                f'not in distill_losses {sorted(self.distill_losses)}')
        self.executors: Tuple[SegmentExecutor, ...] = ()
        self.spots: List[Tuple[str, str]] = []
        self.spot_boundaries: List[Tuple[int, int]] = []
        self.spot_shapes: List[Tuple[Shape, Shape]] = []
        self.loss_decisions: Dict[str, int] = {}
        self.pool_channels = 0
        self._teacher_records: Dict[int, dict] = {}

    # -- construction ------------------------------------------------------

    def prepare_from_student(self, model: nn.Module) -> None:
        self._check_pool_source(model, 'student')
        super().prepare_from_student(model)

    def prepare_from_teacher(self, model: nn.Module) -> None:
        self._check_pool_source(model, 'teacher')
        super().prepare_from_teacher(model)

    def _check_pool_source(self, model: nn.Module, who: str) -> None:
        names = dict(model.named_modules())
        if (self.pool_source or 'head') not in names:
            raise ValueError(
                f'model.sakd.pool_source={self.pool_source!r} is not a '
                f'module of the {who} ({type(model).__name__}); it must name '
                'the module whose output is the pooled feature vector, e.g. '
                "'neck'")

    def build_distill_losses(self, losses: Optional[dict] = None):
        wrapped = {}
        for name, cfg in (losses or {}).items():
            if isinstance(cfg, dict) and cfg.get('type') in (
                    'SpotWiseLoss', 'mmsakd.SpotWiseLoss', SpotWiseLoss):
                wrapped[name] = cfg
            else:
                wrapped[name] = dict(
                    type='mmsakd.SpotWiseLoss', loss=cfg, mode=self.loss_mode)
        return super().build_distill_losses(wrapped)

    def _check_loss_forward_mappings(self, losses, loss_forward_mappings,
                                     student_recorders, teacher_recorders):
        # MMRazor checks the mapping keys against the loss's signature: the
        # wrapped loss's
        inner = {
            name: loss.loss if isinstance(loss, SpotWiseLoss) else loss
            for name, loss in losses.items()
        }
        super()._check_loss_forward_mappings(inner, loss_forward_mappings,
                                             student_recorders,
                                             teacher_recorders)

    def build_spots(self,
                    student: nn.Module,
                    teacher: nn.Module,
                    input_shape: Optional[Sequence[int]] = None) -> None:
        """Cut both networks into segments and resolve the spot table.

        Called once by the algorithm, after the recorders are initialised.
        One dry run per network and image size (eval mode, no grad, a
        private random generator) verifies the cuts and resolves every
        loss's records to boundaries.

        Args:
            student (nn.Module): The student classifier.
            teacher (nn.Module): The teacher classifier.
            input_shape (Sequence[int], optional): Image shape (C, H, W) of
                the dry runs. None runs two sizes (32 and 64 pixels) and
                refuses adapters or policy inputs that would depend on the
                size, asking for ``model.sakd.input_shape``.
        """
        shapes = self._input_shapes(input_shape)
        managers = (self.student_recorders, self.teacher_recorders)
        executors = []
        for model, manager, who in zip((student, teacher), managers,
                                       ('student', 'teacher')):
            try:
                executors.append(SegmentExecutor(model, shapes[0], manager))
            except RuntimeError as err:
                raise self._input_shape_error(input_shape, who, err) from err
        self.executors = tuple(executors)
        probes = tuple(e.first_probe for e in self.executors)
        resolved = self._resolve(probes)
        per_size = [self._sizes(probes, resolved.spots)]
        for executor in self.executors:
            executor.first_probe = None  # the dry run's tensors
        for shape in shapes[1:]:
            probes = self._probe(shape, input_shape)
            per_size.append(self._sizes(probes, resolved.spots))
        self._check_size_independent(per_size, resolved.spots, input_shape)
        self.spot_boundaries = resolved.spots
        self.loss_decisions = resolved.decisions
        self.spot_shapes, self.pool_channels = per_size[0]
        names = [e.names for e in self.executors]
        self.spots = [(names[0][s], names[1][t]) for s, t in resolved.spots]

    @staticmethod
    def _input_shapes(input_shape) -> List[Tuple[int, ...]]:
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

    @staticmethod
    def _input_shape_error(input_shape, who: str,
                           err: Exception) -> ValueError:
        shown = (f'={tuple(input_shape)}' if input_shape is not None else
                 f' (not set; tried {AUTO_INPUT_SHAPES[0]})')
        return ValueError(
            f'model.sakd.input_shape{shown}: the {who} fails on images of '
            f'that shape ({type(err).__name__}: {err}). Set '
            'model.sakd.input_shape to the (channels, height, width) of the '
            'training images')

    def _probe(self, shape, input_shape) -> Tuple[Probe, Probe]:
        probes = []
        managers = (self.student_recorders, self.teacher_recorders)
        for executor, manager, who in zip(self.executors, managers,
                                          ('student', 'teacher')):
            try:
                probes.append(
                    executor.probe(executor.dry_input(shape), manager))
            except RuntimeError as err:
                raise self._input_shape_error(input_shape, who, err) from err
        return tuple(probes)

    def _sizes(self, probes, spots) -> Tuple[List, int]:
        """Spot shapes and the policy's input size at one image size."""
        s_shapes, t_shapes = (e.shapes_of(p)
                              for e, p in zip(self.executors, probes))
        spot_shapes = [(s_shapes[s], t_shapes[t]) for s, t in spots]
        pool = sum(int(p[0].numel()) for p in self.get_pooled())
        return spot_shapes, pool

    def _check_size_independent(self, per_size, spots, input_shape) -> None:
        if len(per_size) < 2:
            return
        names = [e.names for e in self.executors]
        (shapes, pool), sizes = per_size[0], AUTO_INPUT_SHAPES
        for other_shapes, other_pool in per_size[1:]:
            if other_pool != pool:
                raise ValueError(
                    f'model.sakd.pool_source={self.pool_source!r} gives '
                    f'{pool} policy inputs at {sizes[0]} and {other_pool} '
                    f'at {sizes[1]}: it must be a pooled vector; name the '
                    'pooling module, or set model.sakd.input_shape to the '
                    'training image shape')
            for (s, t), a, b in zip(spots, shapes, other_shapes):
                for src, dst in ((0, 1), (1, 0)):
                    if adapter_spec(a[src],
                                    a[dst]) != adapter_spec(b[src], b[dst]):
                        raise ValueError(
                            f'the adapters at spot ({names[0][s]!r}, '
                            f'{names[1][t]!r}) depend on the image size '
                            f'(shapes {a} at {sizes[0]}, {b} at '
                            f'{sizes[1]}): set model.sakd.input_shape to '
                            'the (channels, height, width) of the training '
                            'images')

    def _resolve(self, probes) -> _Resolved:
        logits = tuple(e.logits_index for e in self.executors)
        self._teacher_records: Dict[int, dict] = {}
        loss_spots = {}
        for name in self.distill_losses:
            if name in self._spot_overrides:
                loss_spots[name] = self._override(name)
            else:
                loss_spots[name] = self._resolve_loss(name, probes)
        features = {}
        for name, spot in loss_spots.items():
            if spot[0] == logits[0] or spot[1] == logits[1]:
                if spot != logits:
                    raise ValueError(
                        f'distill loss {name!r} reads the logits of one '
                        'network and a feature of the other '
                        f'({self._spot_text(spot)}); the logits spot pairs '
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
                f'{[self._spot_text(s) for s in spots]}; SAKD routes through '
                'matching segments, each spot must come after the previous '
                'one in both networks')
        if len({s for s, _ in spots}) != len(spots):
            raise ValueError(
                'one student spot is paired with several teacher spots: '
                f'{[self._spot_text(s) for s in spots]}; each spot is one '
                '(student, teacher) pair')
        decisions = {
            name: len(spots) if spot == logits else spots.index(spot)
            for name, spot in loss_spots.items()
        }
        return _Resolved(spots, decisions)

    def _spot_text(self, spot: Tuple[int, int]) -> str:
        return (f'student {self.executors[0].names[spot[0]]!r}, teacher '
                f'{self.executors[1].names[spot[1]]!r}')

    def _override(self, name: str) -> Tuple[int, int]:
        spot = self._spot_overrides[name]
        if not (isinstance(spot, (tuple, list)) and len(spot) == 2):
            raise ValueError(
                f'model.sakd.spots[{name!r}]={spot!r}: expected a (student '
                'path, teacher path) pair')
        indices = []
        for executor, path, who in zip(self.executors, spot,
                                       ('student', 'teacher')):
            try:
                indices.append(executor.index(path))
            except ValueError as err:
                raise ValueError(f'model.sakd.spots[{name!r}], {who} side: '
                                 f'{err}') from err
        return tuple(indices)

    def _resolve_loss(self, name: str, probes) -> Tuple[int, int]:
        found = {True: set(), False: set()}
        for arg, record in self.loss_forward_mappings.get(name, {}).items():
            if not (isinstance(record, dict) and 'recorder' in record):
                continue
            side = bool(record['from_student'])
            index = self._resolve_record(name, arg, record,
                                         probes[0 if side else 1])
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

    def _resolve_record(self, loss: str, arg: str, record: dict,
                        probe: Probe) -> Optional[int]:
        side = bool(record['from_student'])
        who = 'student' if side else 'teacher'
        executor = self.executors[0 if side else 1]
        manager = self.student_recorders if side else self.teacher_recorders
        recorder = manager.get_recorder(record['recorder'])
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
            if not side:
                # a record of the teacher's tensor at a boundary, to reuse
                # it instead of computing it again
                self._teacher_records.setdefault(
                    index, dict(record, exact=data is probe.boundaries[index]))
            return index
        if isinstance(recorder, ModuleInputsRecorder):
            return None  # batch data: labels, data samples, the image
        if isinstance(data, (tuple, list)):
            raise ValueError(
                f'{where}, which returns a {type(data).__name__} of '
                f'{len(data)}, not one tensor: pick one element with '
                'data_idx in loss_forward_mappings')
        if isinstance(recorder, ModuleOutputsRecorder) and isinstance(
                data, Tensor):
            raise ValueError(
                f'{where}, which is not a segment boundary of the {who} '
                '(a spot must be a tensor after which the network can be '
                'cut and resumed); '
                f'{executor.nearest(data, probe)}')
        raise ValueError(
            f'{where}, which is not a segment boundary of the {who}: SAKD '
            'cuts the networks at module outputs. Record a module output '
            f'or set model.sakd.spots={{{loss!r}: (student path, teacher '
            'path)}')

    # -- training ------------------------------------------------------------

    @property
    def num_decisions(self) -> int:
        """int: Feature spots plus the logits spot."""
        return len(self.spot_boundaries) + 1

    def get_pooled(self) -> Tuple[Tensor, Tensor]:
        """The recorded pooled features (teacher, student) of the batch."""
        pooled = []
        for from_student in (False, True):
            data = self.get_record(POOL_RECORDER, from_student)
            if self.pool_source is None:
                data = data[0]  # the head's inputs: (feats, )
            # MMPretrain necks and backbones return a tuple; the head reads
            # the last element
            pooled.append(data[-1] if isinstance(data, (tuple,
                                                        list)) else data)
        return tuple(pooled)

    def teacher_spot_feature(self, m: int) -> Optional[Tensor]:
        """The teacher's tensor at feature spot ``m`` as the distill
        losses' teacher pass recorded it, or None when no loss records it
        (or only a view of it whose shape depends on the image size)."""
        boundary = self.spot_boundaries[m][1]
        record = self._teacher_records.get(boundary)
        if record is None:
            return None
        data = self.get_record(
            record['recorder'],
            from_student=False,
            record_idx=record.get('record_idx', 0),
            data_idx=record.get('data_idx'))
        if record['exact']:
            return data
        if len(self.spot_shapes[m][1]) == 1:
            # e.g. neck.gap's (B, C, 1, 1) for the neck's (B, C)
            return data.reshape(data.shape[0], -1)
        return None

    def detach_teacher_records(self) -> None:
        """Replace every tensor the teacher's recorders hold by its detached
        version (same values): the teacher's pass may have recorded an
        autograd graph that only the routing pass is to use."""
        for recorder in self.teacher_recorders.recorders.values():
            buffer = recorder.data_buffer
            buffer[:] = [
                tree_map_only(Tensor, Tensor.detach, data) for data in buffer
            ]

    def get_student_logits(self) -> Tensor:
        """The student's logits of the batch (its head's output)."""
        return self.get_record(LOGITS_RECORDER, from_student=True)

    def compute_distill_losses(self,
                               gates: Optional[Tensor] = None
                               ) -> Dict[str, Tensor]:
        """Distill losses, each given its spot's column of ``gates``.

        Args:
            gates (Tensor, optional): (B, num_decisions), 0/1, detached.
                None computes the ungated losses (as
                ``ConfigurableDistiller``).
        """
        losses = {}
        for name, mapping in self.loss_forward_mappings.items():
            kwargs = {
                key: self.get_record(**rec)
                for key, rec in mapping.items()
            }
            loss = self.distill_losses[name]
            if gates is not None and isinstance(loss, SpotWiseLoss):
                kwargs['gates'] = gates[:, self.loss_decisions[name]]
            losses[name] = loss(**kwargs)
        return losses
