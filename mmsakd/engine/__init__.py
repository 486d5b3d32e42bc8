from .hooks import (CheckEpochLengthHook, CheckFiniteLossHook,
                    CRDMemorySyncHook, PolicyTemperatureHook, RNGStateHook,
                    SpotStatisticsHook)

__all__ = [
    'CheckEpochLengthHook', 'CheckFiniteLossHook', 'CRDMemorySyncHook',
    'PolicyTemperatureHook', 'RNGStateHook', 'SpotStatisticsHook'
]
