"""Distillation losses that MMRazor lacks, with RepDistiller semantics."""
from .cc_loss import CCLoss
from .crd_loss import CRDLoss
from .factor_transfer_loss import FactorTransferLoss
from .fsp_loss import FSPLoss
from .nst_loss import NSTLoss
from .pkt_loss import PKTLoss
from .sp_loss import SPLoss
from .vid_loss import VIDLoss

__all__ = [
    'CCLoss', 'CRDLoss', 'FactorTransferLoss', 'FSPLoss', 'NSTLoss', 'PKTLoss',
    'SPLoss', 'VIDLoss'
]
