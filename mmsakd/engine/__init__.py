from .hooks import PolicyTemperatureHook, RNGStateHook, SpotStatisticsHook

__all__ = ['PolicyTemperatureHook', 'RNGStateHook', 'SpotStatisticsHook']
