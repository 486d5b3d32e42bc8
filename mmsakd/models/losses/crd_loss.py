from typing import List

import torch
from mmrazor.models.losses import CRDLoss as MMRazorCRDLoss

from mmsakd.registry import MODELS


@MODELS.register_module()
class CRDLoss(MMRazorCRDLoss):
    """Contrastive representation distillation that applies ``loss_weight``.

    Y. Tian, D. Krishnan and P. Isola, "Contrastive Representation
    Distillation", ICLR 2020, https://arxiv.org/abs/1910.10699.

    Same computation, arguments, memory bank and state as
    :class:`mmrazor.models.losses.CRDLoss` (MMRazor 1.0.0): the NCE loss of
    the student and teacher embeddings against the momentum memory bank,
    ``s_feats`` and ``t_feats`` being the (N, ``dim_out``) L2-normalised
    embeddings and ``data_samples`` carrying each sample's ``sample_idx``
    (and optionally ``contrast_sample_idxs``). The differences:

    * MMRazor's class stores ``loss_weight`` but never multiplies the loss by
      it, so every weight acts as 1. This class returns
      ``loss_weight * loss``. Configs with ``default_scope='mmsakd'`` that
      name ``CRDLoss`` get this class; ``mmrazor.CRDLoss`` still names the
      unweighted one.
    * The result is a 0-dim tensor (MMRazor's has shape ``(1, )``); the
      value is the same.
    * The data samples' index tensors are moved to the embeddings' device
      first: data preprocessors such as MMPretrain's ``ClsDataPreprocessor``
      leave them on the CPU while the memory bank lives on the GPU.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        temperature (float): NCE temperature. Defaults to 0.07.
        neg_num (int): Negatives per sample. Defaults to 16384.
        sample_n (int): Size of the memory bank (dataset length).
            Defaults to 50000.
        dim_out (int): Embedding width. Defaults to 128.
        momentum (float): Memory update momentum. Defaults to 0.5.
        eps (float): Epsilon of the NCE loss. Defaults to 1e-7.

    Example:
        >>> # SAKD weight (beta) for CRD
        >>> distill_losses = dict(
        ...     loss_crd=dict(type='CRDLoss', loss_weight=0.8))
    """

    def forward(self, s_feats: torch.Tensor, t_feats: torch.Tensor,
                data_samples: List) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feats (torch.Tensor): Student embeddings, (N, dim_out).
            t_feats (torch.Tensor): Teacher embeddings, (N, dim_out).
            data_samples (list): Data samples with ``sample_idx``.

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        if s_feats.device.type != 'cpu':
            data_samples = [
                sample.to(s_feats.device) for sample in data_samples
            ]
        loss = super().forward(s_feats, t_feats, data_samples)
        return self.loss_weight * loss.reshape(())
