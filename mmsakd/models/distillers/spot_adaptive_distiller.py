"""A ConfigurableDistiller whose losses are gated per sample and per spot."""
import copy
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

from mmrazor.models.distillers import ConfigurableDistiller
from torch import Tensor, nn
from torch.utils._pytree import tree_map_only

from mmsakd.registry import MODELS
from ..losses.gating import check_mode, gated_loss
from ..sakd.spot_table import SpotTable, build_spot_table, pooled_record

POOL_RECORDER = '_sakd_pool'
LOGITS_RECORDER = '_sakd_logits'


@MODELS.register_module()
class SpotAdaptiveDistiller(ConfigurableDistiller):
    """MMRazor's ``ConfigurableDistiller`` with SAKD's per-sample spot gates.

    J. Song, Y. Chen, J. Ye and M. Song, "Spot-adaptive Knowledge
    Distillation", IEEE TIP 31, 2022, https://arxiv.org/abs/2205.02399.

    Takes the arguments of ``ConfigurableDistiller`` (so any MMRazor
    distiller config becomes spot-adaptive unchanged) and

    * resolves the spot of every distill loss when MMRazor prepares the
      teacher (after the student), into one :class:`~mmsakd.models.sakd.
      spot_table.SpotTable` (:attr:`spot_table`,
      :func:`~mmsakd.models.sakd.spot_table.build_spot_table`);
    * computes each loss on the samples the policy selected at its spot
      (:meth:`compute_distill_losses`,
      :func:`~mmsakd.models.losses.gating.gated_loss`); the losses stay the
      config's own modules, so the state dict keys are MMRazor's.

    Args:
        loss_mode (str | dict): ``'subset'`` (the method, default) or
            ``'mask'`` for every loss, or a dict of loss name -> mode (the
            others ``'subset'``); see :func:`~mmsakd.models.losses.gating.
            gated_loss`.
        spots (dict, optional): ``{loss name: (student path, teacher
            path)}`` for losses whose spot cannot be resolved or should
            differ; any module path whose output is a boundary's tensor.
        pool_source (str, optional): Module path whose output is the
            pooled penultimate feature vector, the policy's input. Defaults
            to None: the head's input, i.e. the neck's output, or the
            backbone's for a classifier without neck.
        input_shape (Sequence[int], optional): Image shape (C, H, W) of the
            dry runs; None tries two sizes and refuses adapters (and policy
            inputs) that depend on the size.
        **kwargs: The arguments of ``ConfigurableDistiller``.
    """

    def __init__(self,
                 loss_mode: Union[str, Mapping[str, str]] = 'subset',
                 spots: Optional[Dict[str, Sequence[str]]] = None,
                 pool_source: Optional[str] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 student_recorders: Optional[dict] = None,
                 teacher_recorders: Optional[dict] = None,
                 **kwargs) -> None:
        self.pool_source = pool_source
        self._spot_overrides = dict(spots or {})
        self._input_shape = input_shape
        self._student: Tuple[nn.Module, ...] = ()
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
            **kwargs)
        self.loss_modes = self._loss_modes(loss_mode)
        self.spot_table: Optional[SpotTable] = None

    def _loss_modes(self, loss_mode) -> Dict[str, str]:
        if isinstance(loss_mode, Mapping):
            unknown = set(loss_mode) - set(self.distill_losses)
            if unknown:
                raise ValueError(
                    f'model.sakd.loss_mode names losses {sorted(unknown)} '
                    f'that are not in distill_losses '
                    f'{sorted(self.distill_losses)}')
            modes = {
                n: loss_mode.get(n, 'subset')
                for n in self.distill_losses
            }
            keys = {n: f'model.sakd.loss_mode[{n!r}]' for n in modes}
        else:
            modes = {n: loss_mode for n in self.distill_losses}
            keys = {n: 'model.sakd.loss_mode' for n in modes}
        for name, mode in modes.items():
            check_mode(self.distill_losses[name], mode, keys[name])
        return modes

    # -- construction ------------------------------------------------------

    def prepare_from_student(self, model: nn.Module) -> None:
        self._check_pool_source(model, 'student')
        super().prepare_from_student(model)
        self._student = (model, )  # a tuple: not a submodule

    def prepare_from_teacher(self, model: nn.Module) -> None:
        """Initialise the teacher's recorders, then build the spot table
        (the student's were initialised first, as MMRazor's algorithms
        do)."""
        self._check_pool_source(model, 'teacher')
        super().prepare_from_teacher(model)
        if not self._student:
            raise RuntimeError('prepare_from_student must come first: the '
                               'spot table needs both networks')
        self.spot_table = build_spot_table(
            (self._student[0], model),
            (self.student_recorders, self.teacher_recorders),
            self.loss_forward_mappings,
            list(self.distill_losses),
            POOL_RECORDER,
            head_input=self.pool_source is None,
            overrides=self._spot_overrides,
            input_shape=self._input_shape,
            pool_source=self.pool_source)
        self._student = ()

    def _check_pool_source(self, model: nn.Module, who: str) -> None:
        names = dict(model.named_modules())
        if (self.pool_source or 'head') not in names:
            raise ValueError(
                f'model.sakd.pool_source={self.pool_source!r} is not a '
                f'module of the {who} ({type(model).__name__}); it must name '
                'the module whose output is the pooled feature vector, e.g. '
                "'neck'")

    def build_distill_losses(self, losses: Optional[dict] = None):
        for name, cfg in (losses or {}).items():
            if isinstance(cfg,
                          dict) and cfg.get('type') in ('SpotWiseLoss',
                                                        'mmsakd.SpotWiseLoss'):
                raise ValueError(
                    f'distill_losses.{name} is a SpotWiseLoss: the '
                    'spot-adaptive distiller gates every loss itself. Give '
                    'the loss itself, and its mode with model.sakd.'
                    f"loss_mode={{{name!r}: {cfg.get('mode', 'subset')!r}}}")
        return super().build_distill_losses(losses)

    # -- training ------------------------------------------------------------

    def detach_teacher_records(self) -> None:
        """Replace every tensor the teacher's recorders hold by its detached
        version (same values). A frozen teacher's pass that the routing pass
        may reuse records an autograd graph (:mod:`~mmsakd.models.sakd.
        teacher_reuse`); only the captured :class:`~mmsakd.models.sakd.
        teacher_reuse.TeacherPass` is to keep it, so that an unused graph is
        freed as soon as the routing pass drops it, and the losses and the
        policy read the records without it, as the authors' code."""
        for recorder in self.teacher_recorders.recorders.values():
            buffer = recorder.data_buffer
            buffer[:] = [
                tree_map_only(Tensor, Tensor.detach, data) for data in buffer
            ]

    def get_pooled(self) -> Tuple[Tensor, Tensor]:
        """The recorded pooled features (teacher, student) of the batch."""
        return tuple(
            pooled_record(
                self.get_record(POOL_RECORDER, from_student), self.pool_source
                is None) for from_student in (False, True))

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
        decisions = self.spot_table.decisions if gates is not None else {}
        losses = {}
        for name, mapping in self.loss_forward_mappings.items():
            kwargs = {
                key: self.get_record(**rec)
                for key, rec in mapping.items()
            }
            loss = self.distill_losses[name]
            if gates is None:
                losses[name] = loss(**kwargs)
            else:
                losses[name] = gated_loss(loss, kwargs, gates[:,
                                                              decisions[name]],
                                          self.loss_modes[name])
        return losses
