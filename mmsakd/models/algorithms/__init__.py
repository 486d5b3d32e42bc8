from .spot_adaptive_distill import SpotAdaptiveDistill

__all__ = ['SpotAdaptiveDistill']
