from .hooks import RNGStateHook, SpotStatisticsHook

__all__ = ['RNGStateHook', 'SpotStatisticsHook']
