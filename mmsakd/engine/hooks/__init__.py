from .check_epoch_length_hook import CheckEpochLengthHook
from .check_finite_loss_hook import CheckFiniteLossHook
from .crd_memory_sync_hook import CRDMemorySyncHook
from .policy_temperature_hook import PolicyTemperatureHook
from .rng_state_hook import RNGStateHook
from .spot_statistics_hook import SpotStatisticsHook

__all__ = [
    'CheckEpochLengthHook', 'CheckFiniteLossHook', 'CRDMemorySyncHook',
    'PolicyTemperatureHook', 'RNGStateHook', 'SpotStatisticsHook'
]
