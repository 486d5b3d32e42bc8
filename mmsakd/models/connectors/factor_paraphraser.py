from typing import Dict, Optional

from mmrazor.models.architectures.connectors import Paraphraser

from mmsakd.registry import MODELS


@MODELS.register_module()
class FactorParaphraser(Paraphraser):
    """The teacher's paraphraser of factor transfer, fixed after its
    pre-training.

    J. Kim, S. Park and N. Kwak, "Paraphrasing Complex Network: Network
    Compression via Factor Transfer", NeurIPS 2018,
    https://arxiv.org/abs/1802.04977.

    MMRazor's ``Paraphraser``, which is RepDistiller's module (three 3x3
    convolutions encode the teacher's map into ``out_channel`` factors,
    three transposed convolutions decode it; LeakyReLU 0.1, BN only with
    ``use_bn``): ``phase='pretrain'`` returns the reconstruction, to be
    trained with an MSE loss; ``phase='train'`` returns the factors, computed
    without gradient.

    The one change: in ``phase='train'`` the parameters require no gradient.
    MMRazor's class computes the factors under ``no_grad`` but leaves the
    parameters trainable, so they never get a gradient while counting as
    trainable, and DistributedDataParallel (``find_unused_parameters=False``)
    stops at the second iteration. RepDistiller keeps the pre-trained
    paraphraser out of the student's optimizer; here it requires no gradient,
    so no optimizer, weight decay or DDP reducer touches it.

    Args:
        in_channel (int): Channels of the teacher's map.
        out_channel (int): Number of factors, ``int(in_channel * k)`` with
            the paraphrase rate ``k`` (0.5 in RepDistiller and SAKD).
        phase (str): ``'pretrain'`` or ``'train'``. Defaults to
            ``'pretrain'``.
        use_bn (bool): BN after every convolution. Defaults to False, as
            RepDistiller's paraphraser.
        init_cfg (dict, optional): E.g. ``dict(type='Pretrained',
            checkpoint=..., prefix='distiller.connectors.<name>.')`` to load
            the pre-trained paraphraser.
    """

    def __init__(self,
                 in_channel: int,
                 out_channel: int,
                 phase: str = 'pretrain',
                 use_bn: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            in_channel,
            out_channel,
            phase=phase,
            use_bn=use_bn,
            init_cfg=init_cfg)
        if phase == 'train':
            self.requires_grad_(False)
