from .spot_adaptive_distiller import SpotAdaptiveDistiller

__all__ = ['SpotAdaptiveDistiller']
