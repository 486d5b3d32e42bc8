"""Spot-adaptive distillation: policy, spot table, adapters, routing network.

Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022
(arXiv 2205.02399).
"""
from .adapters import ConvReg, build_adapter
from .cutting import get_segment_describer, register_segment_describer
from .executor import SegmentExecutor
from .hrnet_describer import describe_hrnet
from .policy_head import SpotPolicyHead, gumbel_softmax_st
from .routing import RoutingNetwork
from .spot_table import SpotTable, build_spot_table
from .swin_describer import describe_swin_transformer
from .vit_describer import describe_vision_transformer

__all__ = [
    'ConvReg', 'build_adapter', 'SpotPolicyHead', 'gumbel_softmax_st',
    'RoutingNetwork', 'SegmentExecutor', 'SpotTable', 'build_spot_table',
    'get_segment_describer', 'register_segment_describer',
    'describe_vision_transformer', 'describe_swin_transformer',
    'describe_hrnet'
]
