from typing import List, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.logging import print_log
from mmrazor.models.losses import CRDLoss as MMRazorCRDLoss

from mmsakd.registry import MODELS

# Largest (rows x bank size) block of scores computed at once: 2**24 floats
# (64 MiB) keeps a batch of 64 against 50,000 samples in one block.
_SCORE_BLOCK = 2**24


def _distributed() -> bool:
    return (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def _blocks(feats: torch.Tensor, memory: torch.Tensor) -> range:
    """Start rows of the batch blocks: at most ``_SCORE_BLOCK`` scores."""
    return range(0, feats.size(0), max(1, _SCORE_BLOCK // memory.size(0)))


def _exp_scores(feats: torch.Tensor, memory: torch.Tensor,
                contrast_idx: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """``exp(<memory[contrast_idx[b, j]], feats[b]> / T)``, (B, K + 1).

    The scores of every bank row are computed first (one matrix product)
    and then gathered: the arithmetic of gathering ``B * (K + 1)`` bank
    rows and taking dot products, without materialising those rows. No
    autograd graph; in the bank's precision, also under AMP (``exp(score /
    0.07)`` amplifies the rounding of a float16 product).
    """
    feats = feats.detach().to(memory.dtype)
    step = _blocks(feats, memory).step
    with torch.autocast(feats.device.type, enabled=False):
        blocks = [
            torch.mm(feats[i:i + step],
                     memory.t()).gather(1, contrast_idx[i:i + step])
            for i in _blocks(feats, memory)
        ]
    scores = blocks[0] if len(blocks) == 1 else torch.cat(blocks)
    return scores.div_(temperature).exp_()


def _feats_grad(score_grad: torch.Tensor, memory: torch.Tensor,
                contrast_idx: torch.Tensor) -> torch.Tensor:
    """The gradient w.r.t. the embeddings, given the gradient w.r.t. their
    gathered scores: scatter-add onto every bank row, then one product."""
    step = _blocks(score_grad, memory).step
    blocks = []
    with torch.autocast(score_grad.device.type, enabled=False):
        for i in _blocks(score_grad, memory):
            dense = score_grad.new_zeros(
                (min(step,
                     score_grad.size(0) - i), memory.size(0)))
            dense.scatter_add_(1, contrast_idx[i:i + step],
                               score_grad[i:i + step])
            blocks.append(torch.mm(dense, memory))
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)


def _nce(probs: torch.Tensor, n_data: int, eps: float,
         temperature: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """MMRazor's ``ContrastLoss`` (CRD's Eq. 18) and its gradient w.r.t.
    the scores before the temperature.

    ``probs`` (B, K + 1) are ``exp(score / T) / Z``, the positive first.
    With ``c = K / n_data + eps`` the loss is ``sum_b log1p(c / P_b0) +
    sum_{b, j>0} log1p((P_bj + eps) * n_data / K)``, divided by B: the same
    terms as ``-log(P / (P + c))`` and ``-log(K / n_data / (P + c))``,
    written without cancellation. Its gradient w.r.t. the score of a
    negative is ``P / (P + c) / (B T)`` and of a positive that minus
    ``1 / (B T)``.
    """
    batch = probs.size(0)
    m_pn = (probs.size(1) - 1) / float(n_data)
    c = m_pn + eps
    grad = probs / (probs + c)
    loss = torch.log1p(c / probs[:, 0]).sum()
    loss = loss + probs[:, 1:].add(eps).div_(m_pn).log1p_().sum()
    grad[:, 0] -= 1
    return loss / batch, grad.mul_(1.0 / (batch * temperature))


class _PrecomputedGrad(torch.autograd.Function):
    """``value``, whose gradients w.r.t. the embeddings were computed with
    it (the bank may change before the backward pass)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, s_feats: torch.Tensor,
                t_feats: torch.Tensor, s_grad: Optional[torch.Tensor],
                t_grad: Optional[torch.Tensor]) -> torch.Tensor:
        ctx.save_for_backward(s_grad, t_grad)
        ctx.dtypes = (s_feats.dtype, t_feats.dtype)
        return value.clone()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple:
        grads = [
            None if g is None else (grad_out * g).to(dtype)
            for g, dtype in zip(ctx.saved_tensors, ctx.dtypes)
        ]
        return None, grads[0], grads[1], None, None


@MODELS.register_module()
class CRDLoss(MMRazorCRDLoss):
    """Contrastive representation distillation that applies ``loss_weight``.

    Y. Tian, D. Krishnan and P. Isola, "Contrastive Representation
    Distillation", ICLR 2020, https://arxiv.org/abs/1910.10699.

    Same arguments, memory bank, state dict and results as
    :class:`mmrazor.models.losses.CRDLoss` (MMRazor 1.0.0, after
    RepDistiller's ``crd/memory.py``): the NCE loss of the student and
    teacher embeddings against the momentum memory bank, ``s_feats`` and
    ``t_feats`` being the (N, ``dim_out``) L2-normalised embeddings and
    ``data_samples`` carrying each sample's ``sample_idx`` (and optionally
    ``contrast_sample_idxs``, else ``neg_num`` negatives are drawn uniformly
    from the bank with MMRazor's sampler and random stream). The
    differences:

    * MMRazor's class stores ``loss_weight`` but never multiplies the loss by
      it, so every weight acts as 1. This class returns
      ``loss_weight * loss``. Configs with ``default_scope='mmsakd'`` that
      name ``CRDLoss`` get this class; ``mmrazor.CRDLoss`` still names the
      unweighted one.
    * The result is a 0-dim tensor (MMRazor's has shape ``(1, )``); the
      value is the same.
    * Speed: MMRazor gathers the ``N x (K + 1)`` contrasted bank rows of
      each side (two 537 MB tensors at N=64, K=16384, 128 dims) before a
      batched product, and autograd then runs about 40 elementwise passes
      over the ``N x (K + 1)`` scores. This class computes every bank row's
      score with one matrix product, gathers the ``N x (K + 1)`` scores,
      and computes the loss and its gradient w.r.t. the embeddings in one
      go (the gradient with the bank as it was before this call's
      update), so no bank copy is kept for the backward pass. Double
      backward (``create_graph=True``) is not supported.
    * Precision: the NCE terms ``log(K / n / (P + c))`` of the negatives
      are close to 0; MMRazor's float32 ``log`` of the quotient is off by
      about 1e-4 relative on their sum at K=16384. Here they are computed
      as ``log1p``, within about 1e-7 of MMRazor's formula evaluated in
      float64; at small K both agree within 1e-5.
    * The data samples' index tensors are moved to the embeddings' device
      first: data preprocessors such as MMPretrain's ``ClsDataPreprocessor``
      leave them on the CPU while the memory bank lives on the GPU.
    * Under AMP the scores are computed in the bank's precision (float32):
      ``exp(score / 0.07)`` turns the rounding of a float16 product into
      relative errors of about 1e-2.
    * Distributed training: MMRazor updates each rank's bank with that
      rank's samples only, so the banks drift apart. Here, when more than
      one process runs, the momentum update is deferred to
      :meth:`sync_memory`, which gathers the indices and embeddings of every
      rank and applies them all, in rank order, on every rank (it must be
      called by every rank once per iteration after the backward pass:
      :class:`~mmsakd.engine.CRDMemorySyncHook` does it). Every rank then
      holds the same bank, the bank one process holds after the same global
      batch. The normalisation constants ``Z`` are set, as in MMRazor, from
      the first batch's scores; the first step uses each rank's own
      estimate, and :meth:`sync_memory` replaces it by the estimate over the
      whole global batch on every rank. A single process applies the update
      in ``forward``, as MMRazor does, and makes no distributed call.

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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # (indices, student, teacher embeddings, Z statistics) of the calls
        # since the last sync_memory(); used in distributed training only
        self._pending: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                  Optional[List[float]]]] = []

    def forward(self, s_feats: torch.Tensor, t_feats: torch.Tensor,
                data_samples: List) -> torch.Tensor:
        """Compute the weighted loss (and update or queue the memory update).

        Args:
            s_feats (torch.Tensor): Student embeddings, (N, dim_out).
            t_feats (torch.Tensor): Teacher embeddings, (N, dim_out).
            data_samples (list): Data samples with ``sample_idx``.

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        distributed = _distributed()
        if distributed and self._pending:
            raise RuntimeError(
                'CRDLoss: the memory-bank update of the previous call has '
                'not been shared across ranks yet. In distributed training '
                'every rank must call CRDLoss.sync_memory() once per '
                'iteration, after the backward pass: add '
                "dict(type='mmsakd.CRDMemorySyncHook') to custom_hooks "
                '(configs/_base_/default_runtime.py has it).')
        idx, contrast_idx = self._indices(data_samples, s_feats.device)
        contrast = self.contrast
        temperature, z_s, z_t, momentum = contrast.params[1:].tolist()
        grad_enabled = torch.is_grad_enabled()
        with torch.no_grad():
            exp_t = _exp_scores(t_feats, contrast.memory_v1, contrast_idx,
                                temperature)
            exp_s = _exp_scores(s_feats, contrast.memory_v2, contrast_idx,
                                temperature)
            z_stats = None
            if z_s < 0 or z_t < 0:
                z_s, z_t, z_stats = self._set_normalisers(
                    exp_s, exp_t, z_s, z_t)
            nce = dict(
                n_data=self.criterion_s_t.n_data,
                eps=self.criterion_s_t.eps,
                temperature=temperature)
            loss_s, score_grad_s = _nce(exp_s.div_(z_s), **nce)
            loss_t, score_grad_t = _nce(exp_t.div_(z_t), **nce)
            # with the bank as it is now, before the update below
            s_grad = _feats_grad(
                score_grad_s, contrast.memory_v2, contrast_idx
            ) if grad_enabled and s_feats.requires_grad else None
            t_grad = _feats_grad(
                score_grad_t, contrast.memory_v1, contrast_idx
            ) if grad_enabled and t_feats.requires_grad else None
        loss = loss_s + loss_t
        if s_grad is not None or t_grad is not None:
            loss = _PrecomputedGrad.apply(loss, s_feats, t_feats, s_grad,
                                          t_grad)

        feats = (s_feats.detach().to(contrast.memory_v1.dtype),
                 t_feats.detach().to(contrast.memory_v1.dtype))
        if distributed:
            self._pending.append((idx, *feats, z_stats))
        else:
            self._update_memory(idx, *feats, momentum)
        return self.loss_weight * loss.reshape(())

    def _indices(self, data_samples: List,
                 device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """The positive indices (N, ) and contrast indices (N, K + 1)."""
        first = data_samples[0]
        if 'sample_idx' not in first:
            raise KeyError(
                'CRDLoss needs data samples with a `sample_idx` (the row of '
                'each sample in the memory bank); wrap the training set in '
                "dict(type='mmsakd.CRDSampleDataset', ...) and pack it with "
                "dict(type='mmsakd.PackCRDInputs')")
        for key in ('sample_idx', 'contrast_sample_idxs'):
            if key in first and not isinstance(first.get(key), torch.Tensor):
                raise TypeError(f'CRDLoss: `{key}` must be a tensor, got '
                                f'{type(first.get(key)).__name__}')
        idx = torch.stack([s.sample_idx for s in data_samples]).to(device)
        idx = idx.view(-1)
        if 'contrast_sample_idxs' in first:
            contrast_idx = torch.stack(
                [s.contrast_sample_idxs for s in data_samples]).to(device)
        else:
            # MMRazor's sampler and random stream
            contrast_idx = self.contrast.multinomial.draw(
                idx.numel() * (self.contrast.neg_sample + 1)).view(
                    idx.numel(), -1).to(device)
            contrast_idx.select(1, 0).copy_(idx)
        return idx, contrast_idx

    def _set_normalisers(self, out_s: torch.Tensor, out_t: torch.Tensor,
                         z_s: float, z_t: float) -> Tuple[float, float, list]:
        """Set unset constants ``Z`` from this batch, as MMRazor does."""
        params = self.contrast.params
        n_sample = self.contrast.memory_v1.size(0)
        stats = [0.0, 0.0, 0.0, 0.0]
        with torch.no_grad():
            if z_s < 0:
                params[2] = out_s.mean() * n_sample
                z_s = params[2].item()
                stats[0:2] = [out_s.double().sum().item(), out_s.numel()]
            if z_t < 0:
                params[3] = out_t.mean() * n_sample
                z_t = params[3].item()
                stats[2:4] = [out_t.double().sum().item(), out_t.numel()]
        print_log(
            f'CRDLoss: normalisation constants Z_s={z_s:.1f}, '
            f'Z_t={z_t:.1f} (set from the first batch)',
            logger='current')
        return z_s, z_t, stats

    @torch.no_grad()
    def _update_memory(self, idx: torch.Tensor, feat_s: torch.Tensor,
                       feat_t: torch.Tensor, momentum: float) -> None:
        """MMRazor's momentum update of the rows ``idx`` of both banks."""
        for memory, feats in ((self.contrast.memory_v1, feat_s),
                              (self.contrast.memory_v2, feat_t)):
            rows = torch.index_select(memory, 0, idx.view(-1))
            rows.mul_(momentum)
            rows.add_(torch.mul(feats, 1 - momentum))
            norm = rows.pow(2).sum(1, keepdim=True).pow(0.5)
            memory.index_copy_(0, idx, rows.div(norm))

    @torch.no_grad()
    def sync_memory(self) -> None:
        """Apply the queued memory updates of every rank on every rank.

        A collective call in distributed training: every rank calls it once
        per iteration, after the backward pass, whether or not it called
        ``forward`` in that iteration (under spot-adaptive gates a rank may
        select no sample). Ranks may queue different numbers of samples.
        Without distributed training it does nothing (``forward`` already
        updated the bank).
        """
        if not _distributed():
            self._pending.clear()
            return
        pending, self._pending = self._pending, []
        memory = self.contrast.memory_v1
        device, dim = memory.device, memory.size(1)
        if pending:
            idx = torch.cat([p[0].view(-1) for p in pending])
            feats = torch.cat(
                [torch.cat([p[1], p[2]], dim=1) for p in pending])
        else:
            idx = torch.zeros(0, dtype=torch.long, device=device)
            feats = memory.new_zeros((0, 2 * dim))
        z_stats = [0.0] * 4
        for entry in pending:
            if entry[3] is not None:
                z_stats = [a + b for a, b in zip(z_stats, entry[3])]
        local = torch.tensor([idx.numel(), *z_stats],
                             dtype=torch.float64,
                             device=device)
        world = dist.get_world_size()
        stats = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(stats, local)
        stats = torch.stack(stats).tolist()
        sizes = [int(row[0]) for row in stats]
        longest = max(sizes)
        if longest > 0:
            idx_pad = idx.new_zeros(longest)
            idx_pad[:idx.numel()] = idx
            feats_pad = feats.new_zeros((longest, 2 * dim))
            feats_pad[:feats.size(0)] = feats
            all_idx = [torch.empty_like(idx_pad) for _ in range(world)]
            all_feats = [torch.empty_like(feats_pad) for _ in range(world)]
            dist.all_gather(all_idx, idx_pad)
            dist.all_gather(all_feats, feats_pad)
            idx = torch.cat([t[:n] for t, n in zip(all_idx, sizes)])
            feats = torch.cat([t[:n] for t, n in zip(all_feats, sizes)])
            momentum = self.contrast.params[4].item()
            self._update_memory(idx, feats[:, :dim], feats[:, dim:], momentum)
        n_sample = memory.size(0)
        params = self.contrast.params
        for slot, column in ((2, 1), (3, 3)):
            count = sum(row[column + 1] for row in stats)
            if count > 0:
                total = sum(row[column] for row in stats)
                params[slot] = total / count * n_sample
