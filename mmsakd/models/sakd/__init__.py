"""Spot-adaptive distillation: policy, segments, adapters, routing network.

Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022
(arXiv 2205.02399).
"""
from .adapters import ConvReg, build_adapter
from .policy_head import SpotPolicyHead, gumbel_softmax_st
from .routing import RoutingNetwork
from .segments import (SegmentExecutor, get_segment_describer,
                       register_segment_describer)

__all__ = [
    'ConvReg', 'build_adapter', 'SpotPolicyHead', 'gumbel_softmax_st',
    'RoutingNetwork', 'SegmentExecutor', 'get_segment_describer',
    'register_segment_describer'
]
