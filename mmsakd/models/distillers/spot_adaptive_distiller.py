"""A ConfigurableDistiller whose losses are gated per sample and per spot."""
import copy
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.task_modules.recorder import (ModuleInputsRecorder,
                                                  ModuleOutputsRecorder)
from torch import Tensor, nn

from mmsakd.registry import MODELS
from ..losses.spot_wise_loss import SpotWiseLoss
from ..sakd.segments import LOGITS_ALIASES, LOGITS_PATH, SegmentExecutor

Spot = Tuple[str, str]  # (student module path, teacher module path)
POOL_RECORDER = '_sakd_pool'
LOGITS_RECORDER = '_sakd_logits'
MODES = ('subset', 'mask')


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
      selected at its spot;
    * infers the spot table: the spot of a loss is the module path of the
      student record and of the teacher record it reads (``ModuleOutputs``
      recorders; ``ModuleInputs`` records, e.g. CRD's data samples or DKD's
      labels, are batch data, not spots). Losses that read the same
      pair of paths share one decision. Spots are ordered by execution order
      of the student; the logits spot (``head.fc``) is always the last
      decision, even if no loss reads it. ``spots`` overrides the inference
      per loss.

    Args:
        loss_mode (str): ``'subset'`` (the method, default) or ``'mask'``;
            see ``SpotWiseLoss``.
        spots (dict, optional): ``{loss name: (student path, teacher
            path)}`` for losses whose spot cannot be inferred or should
            differ.
        pool_source (str): Module path of the pooled penultimate features,
            the policy's input. Defaults to ``'neck'``.
        **kwargs: The arguments of ``ConfigurableDistiller``.
    """

    def __init__(self,
                 loss_mode: str = 'subset',
                 spots: Optional[Dict[str, Spot]] = None,
                 pool_source: str = 'neck',
                 student_recorders: Optional[dict] = None,
                 teacher_recorders: Optional[dict] = None,
                 distill_losses: Optional[dict] = None,
                 **kwargs) -> None:
        if loss_mode not in MODES:
            raise ValueError(f'sakd loss_mode must be one of {MODES}, got '
                             f'{loss_mode!r}')
        self.loss_mode = loss_mode
        self.pool_source = pool_source
        self._spot_overrides = dict(spots or {})
        extra = dict(type='ModuleOutputs', source=pool_source)
        student_recorders = dict(student_recorders or {})
        teacher_recorders = dict(teacher_recorders or {})
        student_recorders[POOL_RECORDER] = extra
        teacher_recorders[POOL_RECORDER] = copy.deepcopy(extra)
        student_recorders[LOGITS_RECORDER] = dict(
            type='ModuleOutputs', source=LOGITS_PATH)
        super().__init__(
            student_recorders=student_recorders,
            teacher_recorders=teacher_recorders,
            distill_losses=distill_losses,
            **kwargs)
        unknown = set(self._spot_overrides) - set(self.distill_losses)
        if unknown:
            raise ValueError(
                f'sakd spots names losses {sorted(unknown)} that are not in '
                f'distill_losses {sorted(self.distill_losses)}')
        self.loss_spots = OrderedDict(
            (name, self._infer_spot(name)) for name in self.distill_losses)
        self.spots: List[Spot] = []  # ordered once the student is known

    def prepare_from_student(self, model: nn.Module) -> None:
        self._check_pool_source(model, 'student')
        super().prepare_from_student(model)

    def prepare_from_teacher(self, model: nn.Module) -> None:
        self._check_pool_source(model, 'teacher')
        super().prepare_from_teacher(model)

    def _check_pool_source(self, model: nn.Module, who: str) -> None:
        names = dict(model.named_modules())
        if self.pool_source not in names:
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

    def _record_path(self, record: dict) -> Optional[str]:
        """The module path a loss argument reads, None for batch data."""
        manager = (
            self.student_recorders
            if record['from_student'] else self.teacher_recorders)
        recorder = manager.get_recorder(record['recorder'])
        if isinstance(recorder, ModuleInputsRecorder):
            # batch data such as CRD's data samples or DKD's labels
            return None
        if isinstance(recorder, ModuleOutputsRecorder):
            return recorder.source
        raise ValueError(
            f'cannot infer the spot of a loss reading recorder '
            f'{record["recorder"]!r} ({type(recorder).__name__}): SAKD cuts '
            'the networks at module outputs. Record a module output '
            '(type="ModuleOutputs") or set sakd.spots={loss name: (student '
            'path, teacher path)}.')

    def _infer_spot(self, loss_name: str) -> Spot:
        if loss_name in self._spot_overrides:
            student, teacher = self._spot_overrides[loss_name]
            return self._canonical(student), self._canonical(teacher)
        mapping = self.loss_forward_mappings.get(loss_name, {})
        paths = {True: set(), False: set()}
        for record in mapping.values():
            if isinstance(record, dict) and 'recorder' in record:
                path = self._record_path(record)
                if path is not None:
                    paths[record['from_student']].add(self._canonical(path))
        if len(paths[True]) != 1 or len(paths[False]) != 1:
            raise ValueError(
                f'cannot infer the spot of {loss_name!r}: it reads student '
                f'paths {sorted(paths[True])} and teacher paths '
                f'{sorted(paths[False])}; a spot is one student and one '
                'teacher module output. Set sakd.spots={'
                f'{loss_name!r}: (student path, teacher path)}}.')
        return paths[True].pop(), paths[False].pop()

    @staticmethod
    def _canonical(path: str) -> str:
        return LOGITS_PATH if path in LOGITS_ALIASES else path

    def order_spots(self, student: SegmentExecutor,
                    teacher: SegmentExecutor) -> List[Spot]:
        """Order the feature spots by execution order; validate the paths.

        Returns the feature spots (without the logits spot). Raises a
        ValueError naming the loss and the spot when a path is not a segment
        boundary of its network or the two orders disagree.
        """
        feature = OrderedDict()
        for name, (s_path, t_path) in self.loss_spots.items():
            if LOGITS_PATH in (s_path, t_path):
                if (s_path, t_path) != (LOGITS_PATH, LOGITS_PATH):
                    raise ValueError(
                        f'{name!r}: the logits spot must read head.fc of both '
                        f'networks, got student {s_path!r} and teacher '
                        f'{t_path!r}')
                continue
            for executor, path, who in ((student, s_path, 'student'),
                                        (teacher, t_path, 'teacher')):
                try:
                    executor.index(path)
                except ValueError as e:
                    raise ValueError(
                        f'distill loss {name!r} reads the {who} at '
                        f'{path!r}, which cannot be a SAKD spot: {e}') from e
            feature[(s_path, t_path)] = None
        spots = sorted(feature, key=lambda s: student.index(s[0]))
        t_order = [teacher.index(t) for _, t in spots]
        if t_order != sorted(t_order) or len(set(t_order)) != len(t_order):
            raise ValueError(
                'the feature spots are in a different order in the teacher '
                f'than in the student: {spots}; SAKD routes through matching '
                'segments, each spot must come after the previous one in '
                'both networks')
        if len({s for s, _ in spots}) != len(spots):
            raise ValueError(
                f'one student path is paired with several teacher paths: '
                f'{spots}; each spot is one (student, teacher) pair')
        self.spots = list(spots)
        return self.spots

    @property
    def num_decisions(self) -> int:
        return len(self.spots) + 1

    def spot_index(self, loss_name: str) -> int:
        """Decision index of a loss (the last one is the logits spot)."""
        spot = self.loss_spots[loss_name]
        if spot == (LOGITS_PATH, LOGITS_PATH):
            return len(self.spots)
        return self.spots.index(spot)

    def get_pooled(self) -> Tuple[Tensor, Tensor]:
        """The recorded pooled features (teacher, student) of the batch."""
        pooled = []
        for from_student in (False, True):
            data = self.get_record(POOL_RECORDER, from_student)
            # MMPretrain necks return a tuple of pooled features
            pooled.append(data[0] if isinstance(data, (tuple, list)) else data)
        return tuple(pooled)

    def get_student_logits(self) -> Tensor:
        return self.get_record(LOGITS_RECORDER, from_student=True)

    def compute_distill_losses(self, gates: Optional[Tensor] = None) -> dict:
        """Distill losses, each gated by its spot's column of ``gates``.

        Args:
            gates (Tensor, optional): (B, num_decisions), 0/1. None computes
                the ungated losses (as ``ConfigurableDistiller``).
        """
        losses: Dict[str, nn.Module] = self.distill_losses
        try:
            for name, loss in losses.items():
                loss.set_gates(None if gates is None else
                               gates[:, self.spot_index(name)])
            return super().compute_distill_losses()
        finally:
            for loss in losses.values():
                loss.set_gates(None)
