from .policy_temperature_hook import PolicyTemperatureHook
from .rng_state_hook import RNGStateHook
from .spot_statistics_hook import SpotStatisticsHook

__all__ = ['PolicyTemperatureHook', 'RNGStateHook', 'SpotStatisticsHook']
