"""mmsakd's registries: children of MMRazor's, scope ``mmsakd``.

The decision, once for the whole package (see docs/get_started.md):

* every mmsakd component is registered in a child registry of the matching
  MMRazor registry, with scope ``mmsakd``;
* configs name them plainly ``X`` under ``default_scope='mmsakd'`` (what
  mmsakd's configs use), ``mmsakd.X`` under ``default_scope='mmrazor'`` or
  inside a ``_scope_='mmrazor'`` block (MMRazor's own configs), and from any
  other scope (e.g. ``mmpretrain``) as ``X`` inside a ``_scope_='mmsakd'``
  block -- MMEngine resolves a ``scope.X`` prefix only from the parent
  registry or the root, and mmsakd sits below MMRazor;
* under ``default_scope='mmsakd'`` a plain name that mmsakd does not define is
  looked up in MMRazor, then MMEngine (the parent chain), so MMRazor configs
  keep working unchanged;
* MMPretrain types are siblings, not parents: name them ``mmpretrain.X`` or
  build them inside ``_scope_='mmpretrain'``, exactly as MMRazor's own
  configs must.
"""
from mmengine.registry import Registry
from mmrazor.registry import DATA_SAMPLERS as MMRAZOR_DATA_SAMPLERS
from mmrazor.registry import DATASETS as MMRAZOR_DATASETS
from mmrazor.registry import HOOKS as MMRAZOR_HOOKS
from mmrazor.registry import LOOPS as MMRAZOR_LOOPS
from mmrazor.registry import METRICS as MMRAZOR_METRICS
from mmrazor.registry import MODEL_WRAPPERS as MMRAZOR_MODEL_WRAPPERS
from mmrazor.registry import MODELS as MMRAZOR_MODELS
from mmrazor.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMRAZOR_OPTIM_WRAPPER_CONSTRUCTORS
from mmrazor.registry import OPTIM_WRAPPERS as MMRAZOR_OPTIM_WRAPPERS
from mmrazor.registry import OPTIMIZERS as MMRAZOR_OPTIMIZERS
from mmrazor.registry import PARAM_SCHEDULERS as MMRAZOR_PARAM_SCHEDULERS
from mmrazor.registry import RUNNER_CONSTRUCTORS as MMRAZOR_RUNNER_CONSTRUCTORS
from mmrazor.registry import RUNNERS as MMRAZOR_RUNNERS
from mmrazor.registry import TASK_UTILS as MMRAZOR_TASK_UTILS
from mmrazor.registry import TRANSFORMS as MMRAZOR_TRANSFORMS
from mmrazor.registry import VISBACKENDS as MMRAZOR_VISBACKENDS
from mmrazor.registry import VISUALIZERS as MMRAZOR_VISUALIZERS
from mmrazor.registry import WEIGHT_INITIALIZERS as MMRAZOR_WEIGHT_INITIALIZERS

SCOPE = 'mmsakd'


def _child(name: str, parent: Registry, *locations: str) -> Registry:
    return Registry(
        name, parent=parent, scope=SCOPE, locations=list(locations))


RUNNERS = _child('runner', MMRAZOR_RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', MMRAZOR_RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', MMRAZOR_LOOPS, 'mmsakd.engine')
HOOKS = _child('hook', MMRAZOR_HOOKS, 'mmsakd.engine')
DATASETS = _child('dataset', MMRAZOR_DATASETS, 'mmsakd.datasets')
DATA_SAMPLERS = _child('data sampler', MMRAZOR_DATA_SAMPLERS,
                       'mmsakd.datasets')
TRANSFORMS = _child('transform', MMRAZOR_TRANSFORMS, 'mmsakd.datasets')
MODELS = _child('model', MMRAZOR_MODELS, 'mmsakd.models')
MODEL_WRAPPERS = _child('model_wrapper', MMRAZOR_MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', MMRAZOR_WEIGHT_INITIALIZERS)
OPTIMIZERS = _child('optimizer', MMRAZOR_OPTIMIZERS)
OPTIM_WRAPPERS = _child('optimizer_wrapper', MMRAZOR_OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMRAZOR_OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', MMRAZOR_PARAM_SCHEDULERS)
METRICS = _child('metric', MMRAZOR_METRICS)
TASK_UTILS = _child('task util', MMRAZOR_TASK_UTILS)
VISUALIZERS = _child('visualizer', MMRAZOR_VISUALIZERS)
VISBACKENDS = _child('vis_backend', MMRAZOR_VISBACKENDS)

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'TASK_UTILS',
    'VISUALIZERS', 'VISBACKENDS'
]
