"""Distillation connectors that MMRazor lacks or needs changed."""
from .factor_paraphraser import FactorParaphraser

__all__ = ['FactorParaphraser']
