"""MMPretrain's ``HRNet``: refused, with the reason.

SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
arXiv 2205.02399) routes one tensor per spot between the two networks.
After ``layer1``, HRNet carries a *list* of branch maps from stage to
stage (2, 3, then 4 resolutions; the transitions map branch j to branch
j), and its classifier's neck (``HRFuseScales``) reads the 4-tuple, so no
single tensor carries the forward after ``layer1`` and no spot other than
the stem would be left. Cutting it would need boundaries that are tuples
of maps (per-branch adapters and one gate for the whole tuple), which
mmsakd does not have.
"""
from typing import List

from mmpretrain.models.backbones import HRNet

from .cutting import UnitNames, register_segment_describer


@register_segment_describer(HRNet)
def describe_hrnet(hrnet: HRNet) -> List[UnitNames]:
    """Refused: the stages pass lists of branch maps."""
    raise NotImplementedError(
        f'{type(hrnet).__name__} passes a list of branch maps (2 to 4 '
        'resolutions) from stage to stage and returns a tuple of them, so '
        'after layer1 no single tensor carries the forward, and SAKD routes '
        'one tensor per spot. Distil HRNet with a fixed-spot distiller '
        '(mmrazor.SingleTeacherDistill), or pair another backbone')
