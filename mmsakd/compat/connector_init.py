"""Apply the ``init_cfg`` of distillation connectors.

MMRazor 1.0.0's ``ConfigurableDistiller.build_connectors`` keeps the
connectors in a plain :class:`torch.nn.ModuleDict`. MMEngine's
``BaseModule.init_weights`` only recurses into children that have an
``init_weights`` method, which ``nn.ModuleDict`` lacks, so a connector's
``init_cfg`` is never applied and nothing says so. The factor-transfer
configs load the pre-trained paraphraser through such an ``init_cfg``
(``type='Pretrained'`` with the pre-training run's checkpoint); without this
patch the student is distilled against a randomly initialised paraphraser.
MMRazor's own factor-transfer config side-steps the gap by loading the whole
pre-training checkpoint (student and teacher included) through the
algorithm's ``init_cfg``; open-mmlab/mmcv#1685 describes the same break of
the ``init_weights`` chain at plain ``nn`` containers.

:func:`patch_connector_init` makes ``ConfigurableDistiller.init_weights``
(and that of subclasses that do not override it) call, after its own
initialisation, ``init_weights`` of every connector that has an
``init_cfg``. Connectors without one are left alone, so their initialisation
does not change (FitNet's ``ConvModuleConnector`` keeps PyTorch's default
initialisation instead of its ``ConvModule``'s Kaiming one).
"""
from typing import List

from torch import nn

_MARK = '_mmsakd_applies_connector_init_cfg'


def init_connectors(distiller: nn.Module) -> List[str]:
    """Initialise the connectors of ``distiller`` that have an ``init_cfg``
    and are not initialised yet.

    Returns:
        list[str]: The names of the connectors initialised.
    """
    connectors = getattr(distiller, 'connectors', None)
    if not isinstance(connectors, nn.ModuleDict):
        return []
    names = []
    for name, connector in connectors.items():
        if (getattr(connector, 'init_cfg', None)
                and hasattr(connector, 'init_weights')
                and not getattr(connector, 'is_init', False)):
            connector.init_weights()
            names.append(name)
    return names


def patch_connector_init() -> list:
    """Make ``ConfigurableDistiller.init_weights`` apply the connectors'
    ``init_cfg`` (idempotent).

    Returns:
        list: What was patched (empty when already done).
    """
    from mmrazor.models.distillers import ConfigurableDistiller
    original = ConfigurableDistiller.init_weights
    if getattr(original, _MARK, False):
        return []

    def init_weights(self) -> None:
        original(self)
        init_connectors(self)

    init_weights.__doc__ = (
        'Initialise the distiller, then the connectors that have an '
        '``init_cfg`` (mmsakd.compat.connector_init).')
    setattr(init_weights, _MARK, True)
    setattr(init_weights, '__wrapped__', original)
    ConfigurableDistiller.init_weights = init_weights
    return ['mmrazor.models.distillers.ConfigurableDistiller.init_weights']
