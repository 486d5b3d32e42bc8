"""Spot-adaptive distillation as an MMRazor algorithm."""
import copy
import weakref
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from mmrazor.models import SingleTeacherDistill
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.utils import add_prefix

from mmsakd.registry import MODELS
from ..distillers import SpotAdaptiveDistiller
from ..sakd.policy_head import SpotPolicyHead
from ..sakd.routing import RoutingNetwork
from ..sakd.teacher_reuse import TeacherPass, TeacherTaps
from ..sakd.utils import train_mode_matters

SAKD_DEFAULTS = dict(
    policy=dict(type='mmsakd.SpotPolicyHead', tau=5.0, init='distill_all'),
    routing_loss_weight=1.0,
    gamma=1.0,
    gamma_rule='reference',
    hinge=True,
    loss_mode='subset',
    spots=None,
    pool_source=None,
    input_shape=None,
    reuse_teacher_pass=True)
GAMMA_RULES = ('reference', 'exclusive')
_DEFAULT_POLICY = ('mmsakd.SpotPolicyHead', 'SpotPolicyHead', SpotPolicyHead)
# exactly these: MMRazor's other distillers subclass ConfigurableDistiller
# but run their own logic
SWAPPABLE_DISTILLERS = (ConfigurableDistiller, SpotAdaptiveDistiller)


def sakd_settings(sakd: Optional[dict]) -> dict:
    """The ``sakd`` block merged over :data:`SAKD_DEFAULTS`, validated."""
    sakd = dict(sakd or {})
    unknown = set(sakd) - set(SAKD_DEFAULTS)
    if unknown:
        raise ValueError(f'unknown key(s) {sorted(unknown)} in model.sakd; '
                         f'valid keys: {sorted(SAKD_DEFAULTS)}')
    settings = copy.deepcopy(SAKD_DEFAULTS)
    policy = sakd.pop('policy', None)
    if policy is not None:
        policy = dict(policy)
        if policy.get('type', settings['policy']['type']) in _DEFAULT_POLICY:
            # the default head's settings are defaults; a user's own policy
            # class gets only what its config says
            settings['policy'].update(policy)
        else:
            settings['policy'] = policy
    settings.update(sakd)
    if not settings['gamma'] > 0:
        raise ValueError(
            f'model.sakd.gamma must be > 0, got {settings["gamma"]!r}')
    if not isinstance(settings['reuse_teacher_pass'], bool):
        raise ValueError('model.sakd.reuse_teacher_pass must be True or '
                         f'False, got {settings["reuse_teacher_pass"]!r}')
    if settings['gamma_rule'] not in GAMMA_RULES:
        raise ValueError(
            f'model.sakd.gamma_rule must be one of {GAMMA_RULES}, got '
            f'{settings["gamma_rule"]!r}')
    return settings


@MODELS.register_module()
class SpotAdaptiveDistill(SingleTeacherDistill):
    """Spot-adaptive knowledge distillation (SAKD).

    J. Song, Y. Chen, J. Ye and M. Song, "Spot-adaptive Knowledge
    Distillation", IEEE TIP 31, 2022, https://arxiv.org/abs/2205.02399.

    A drop-in replacement of MMRazor's ``SingleTeacherDistill``: swap the
    ``type`` of any single-teacher distillation config's model block and add
    a ``sakd`` block; the recorders, losses, connectors and mappings of its
    ``ConfigurableDistiller`` are reused (it becomes a
    :class:`~mmsakd.models.distillers.SpotAdaptiveDistiller`). Each
    iteration, as the authors' code:

    1. teacher and student passes with MMRazor's recorders, as
       ``SingleTeacherDistill.loss`` (the frozen teacher's pass records the
       graph of its activations from the first spot on when the routing
       pass may reuse it, see ``reuse_teacher_pass``); the student's task
       loss;
    2. the policy (:class:`~mmsakd.models.sakd.SpotPolicyHead`) reads the
       detached pooled features of both and samples a 0/1 gate per sample
       and spot (the last one for the logits spot);
    3. every distill loss runs on the samples selected at its spot (gates
       detached: the student loss sends no gradient to the policy);
    4. the routing network mixes teacher and student segments per sample
       (:class:`~mmsakd.models.sakd.RoutingNetwork`), and its cross-entropy
       trains the policy and the adapters: scaled by ``gamma`` when worse
       than the student's own CE and by ``1 / gamma`` when better, plus the
       hinge ``max(0, B/2 - sum(a_logits))``.

    One optimizer, exact: the routing pass runs student and teacher with
    detached parameters, so the routing loss reaches only the policy and the
    adapters, and the student only its own loss -- the same updates as the
    authors' two optimizers (whose policy step throws away the routing
    loss's student gradients). The agent's learning rate (lr / 2) and weight
    decay (1e-3) come from ``paramwise_cfg`` on the ``sakd_`` parameters
    (``lr_mult=0.5, decay_mult=2.0``).

    Args:
        distiller (dict): A ``ConfigurableDistiller`` (or
            ``SpotAdaptiveDistiller``) config.
        sakd (dict, optional): SAKD settings, merged over the defaults:
            ``policy`` (policy head config; ``init='distill_all'`` for
            homogeneous pairs, ``'default'`` for heterogeneous ones),
            ``routing_loss_weight`` (1.0), ``gamma`` (1.0), ``gamma_rule``
            (``'reference'``, see :meth:`_gamma_scale`), ``hinge``
            (True), ``loss_mode`` (``'subset'``), ``spots`` (None: inferred),
            ``pool_source`` (None: the head's input), ``input_shape``
            (None: the dry runs that resolve the spots and size the
            adapters use two image sizes and refuse adapters that would
            depend on the size; set it to the training images' (C, H, W)
            to use that size alone), ``reuse_teacher_pass`` (True:
            teacher segments of the routing pass whose input is the
            teacher's own tensor, because the whole batch picked the
            teacher at every spot before them, are taken from the frozen
            teacher's pass; the same step bit for bit, see
            :mod:`~mmsakd.models.sakd.teacher_reuse`). A ``policy`` of
            another type than ``SpotPolicyHead`` is built from its own
            config, with ``in_channels`` and ``num_decisions`` as default
            arguments.
        **kwargs: The arguments of ``SingleTeacherDistill``.

    Example:
        >>> _base_ = ['../baselines/crd_res56_res20.py']
        >>> model = dict(type='mmsakd.SpotAdaptiveDistill',
        ...              sakd=dict(gamma=1.0))
    """

    def __init__(self,
                 distiller: dict,
                 sakd: Optional[dict] = None,
                 **kwargs) -> None:
        settings = sakd_settings(sakd)
        distiller = dict(distiller)
        kind = distiller.get('type')
        if isinstance(kind, str):
            kind = MODELS.get(kind)
        if kind not in SWAPPABLE_DISTILLERS:
            raise ValueError(
                f'model.distiller.type={distiller.get("type")!r} cannot be '
                'made spot-adaptive: SpotAdaptiveDistill wraps MMRazor\'s '
                'ConfigurableDistiller (recorders + distill_losses + '
                'loss_forward_mappings). Express the distiller in that form.')
        distiller.update(
            type=SpotAdaptiveDistiller,
            loss_mode=settings['loss_mode'],
            spots=settings['spots'],
            pool_source=settings['pool_source'],
            input_shape=settings['input_shape'])
        super().__init__(distiller=distiller, **kwargs)
        self.gamma = float(settings['gamma'])
        self.gamma_rule = settings['gamma_rule']
        self.hinge = bool(settings['hinge'])
        self.routing_loss_weight = float(settings['routing_loss_weight'])
        self.reuse_teacher_pass = settings['reuse_teacher_pass']

        table = self.distiller.spot_table
        self.sakd_routing = RoutingNetwork(table)
        self._teacher_taps = None
        if table.boundaries:
            self._teacher_taps = TeacherTaps(table.executors[1],
                                             table.teacher_boundaries)
            # the hooks go with the model
            weakref.finalize(self, self._teacher_taps.remove)
        self.sakd_policy = MODELS.build(
            settings['policy'],
            default_args=dict(
                in_channels=table.pool_channels,
                num_decisions=table.num_decisions))
        self.spot_names: List[str] = table.spot_names

    def loss(self,
             batch_inputs: torch.Tensor,
             data_samples: Optional[List[BaseDataElement]] = None) -> Dict:
        """Student loss, gated distill losses and the routing loss.

        The passes are those of ``SingleTeacherDistill.loss``; the frozen
        teacher's pass is captured (:class:`~mmsakd.models.sakd.
        teacher_reuse.TeacherTaps`) for the routing pass.
        """
        losses = dict()
        distill = not self.distillation_stopped
        capture = (
            distill and self._teacher_taps is not None
            and self._teacher_is_fixed())
        graph = capture and self.reuse_teacher_pass and \
            torch.is_grad_enabled()
        teacher_pass: Optional[TeacherPass] = None
        self.distiller.set_deliveries_override(False)
        with self.distiller.teacher_recorders, self.distiller.deliveries:
            if self.teacher_trainable:
                losses.update(
                    add_prefix(
                        self.teacher(batch_inputs, data_samples, mode='loss'),
                        'teacher'))
            elif capture:
                with self._teacher_taps.capture(graph) as teacher_pass, \
                        torch.set_grad_enabled(graph):
                    self.teacher(batch_inputs, data_samples, mode='loss')
                if graph:
                    # the captured pass alone keeps the graph
                    self.distiller.detach_teacher_records()
            else:
                with torch.no_grad():
                    self.teacher(batch_inputs, data_samples, mode='loss')
        self.distiller.set_deliveries_override(True)
        with self.distiller.student_recorders, self.distiller.deliveries:
            if self.calculate_student_loss:
                losses.update(
                    add_prefix(
                        self.student(batch_inputs, data_samples, mode='loss'),
                        'student'))
            elif self.student_trainable:
                self.student(batch_inputs, data_samples, mode='loss')
            else:
                with torch.no_grad():
                    self.student(batch_inputs, data_samples, mode='loss')
        if not distill:
            return losses

        gates, _ = self.sakd_policy(*self.distiller.get_pooled())
        losses.update(
            add_prefix(
                self.distiller.compute_distill_losses(gates.detach()),
                'distill'))
        losses.update(
            add_prefix(
                self.routing_losses(batch_inputs, data_samples, gates,
                                    teacher_pass), 'sakd'))
        rates = gates.detach().mean(dim=0)
        for name, rate in zip(self.spot_names, rates):
            losses[f'sakd.rate.{name}'] = rate
        return losses

    def _gamma_scale(self, route_ce: torch.Tensor,
                     student_ce: torch.Tensor) -> torch.Tensor:
        """The factor of the routed CE (tensors throughout: no host sync).

        ``'reference'``: the authors' two conditions one after the other:
        times gamma if worse than the student's CE, then divided by gamma
        if (the scaled value is) better. ``'exclusive'``: gamma if worse,
        1 / gamma if better. They agree for gamma >= 1; for gamma < 1 a
        routed CE above the student's is multiplied by gamma and, when
        that brings it below, divided back by the reference.
        """
        one = route_ce.new_tensor(1.0)
        gamma = route_ce.new_tensor(self.gamma)
        inverse = route_ce.new_tensor(1.0 / self.gamma)
        worse = torch.where(route_ce > student_ce, gamma, one)
        if self.gamma_rule == 'exclusive':
            better = torch.where(route_ce < student_ce, inverse, one)
        else:
            better = torch.where(worse * route_ce < student_ce, inverse, one)
        return worse * better

    def _teacher_is_fixed(self) -> bool:
        """Whether the teacher's pass is a deterministic function of the
        batch that leaves the teacher unchanged, so that the routing pass
        may reuse its tensors (the same tensors it would compute): a frozen
        teacher whose BatchNorm layers are in eval mode (in train mode a
        second pass would update their running statistics again) and whose
        dropout and drop-path layers, if any, are in eval mode too."""
        if self.teacher_trainable:
            return False
        return not any(map(train_mode_matters, self.teacher.modules()))

    def routing_losses(
            self,
            batch_inputs: torch.Tensor,
            data_samples: List[BaseDataElement],
            gates: torch.Tensor,
            teacher_pass: Optional[TeacherPass] = None
    ) -> Dict[str, torch.Tensor]:
        """The policy/adapters loss of the routing network, which takes
        over ``teacher_pass`` (the frozen teacher's captured pass)."""
        labels = torch.cat([sample.gt_label for sample in data_samples
                            ]).to(batch_inputs.device)
        mixed = self.sakd_routing(batch_inputs, gates, teacher_pass)
        del teacher_pass
        route_ce = F.cross_entropy(mixed, labels)
        student_ce = F.cross_entropy(
            self.distiller.get_student_logits().detach(), labels)
        loss = self._gamma_scale(route_ce, student_ce) * route_ce
        hinge = route_ce.new_zeros(())
        if self.hinge:
            # at least half the batch should pick the teacher at the logits
            hinge = F.relu(gates.shape[0] / 2 - gates[:, -1].sum())
            loss = loss + hinge
        return dict(
            loss_route=self.routing_loss_weight * loss,
            route_ce=route_ce.detach(),
            hinge=hinge.detach())
