from .algorithms import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .connectors import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .sakd import *  # noqa: F401,F403
