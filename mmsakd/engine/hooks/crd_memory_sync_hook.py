"""Keep CRD's memory bank identical on every distributed rank."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsakd.registry import HOOKS


@HOOKS.register_module()
class CRDMemorySyncHook(Hook):
    """Share the memory-bank updates of mmsakd's ``CRDLoss`` across ranks.

    CRD (Tian, Krishnan & Isola, "Contrastive Representation Distillation",
    ICLR 2020, https://arxiv.org/abs/1910.10699) keeps a momentum memory
    bank of every training sample's embeddings. In distributed training
    :class:`~mmsakd.models.losses.CRDLoss` queues each rank's update instead
    of applying it; after every training iteration this hook calls
    :meth:`~mmsakd.models.losses.CRDLoss.sync_memory` on each ``CRDLoss`` of
    the model, which gathers the updates of all ranks and applies them on
    every rank, so all ranks hold the same bank. It runs on every rank, also
    where spot-adaptive gates selected no sample and the loss was never
    called. Without distributed training, or for models without
    ``CRDLoss``, it does nothing.

    Example:
        >>> custom_hooks = [dict(type='mmsakd.CRDMemorySyncHook')]
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[Sequence] = None) -> None:
        # imported here: mmsakd imports its engine before its models
        from mmsakd.models.losses import CRDLoss
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        for module in model.modules():
            if isinstance(module, CRDLoss):
                module.sync_memory()
