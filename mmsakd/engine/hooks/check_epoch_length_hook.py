"""Refuse to train when an epoch would run no iteration."""
from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from mmsakd.registry import HOOKS


@HOOKS.register_module()
class CheckEpochLengthHook(Hook):
    """Fail before training when the train dataloader yields no batch.

    With ``train_dataloader.drop_last=True`` and a batch larger than the
    dataset (or than one rank's share of it), every epoch runs 0 iterations;
    MMEngine's epoch loop then "trains" to the end without updating anything
    and ``CheckpointHook`` still saves "epoch" and "best" checkpoints (an
    iteration-based loop would spin forever). This hook raises a
    :class:`ValueError` naming the batch size, the dataset length and the fix
    before the first epoch starts.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        if len(loader) > 0:
            return
        dataset_len = len(loader.dataset)
        if dataset_len == 0:
            raise ValueError(
                'train_dataloader.dataset is empty (0 samples): check the '
                'dataset settings (data_root, ann_file, split, indices) of '
                'train_dataloader.dataset.')
        batch_size = loader.batch_size
        drop_last = loader.drop_last
        if batch_size is None:  # a batch_sampler
            batch_size = getattr(loader.batch_sampler, 'batch_size', None)
            drop_last = getattr(loader.batch_sampler, 'drop_last', drop_last)
        world = get_world_size()
        try:
            per_rank = len(loader.sampler)
        except TypeError:
            per_rank = dataset_len
        share = (f'{per_rank} per rank on {world} ranks'
                 if world > 1 else 'in one process')
        raise ValueError(
            f'train_dataloader gives 0 iterations per epoch: batch_size='
            f'{batch_size} (per rank) with drop_last={drop_last} and a '
            f'dataset of {dataset_len} samples ({share}). Set '
            f'train_dataloader.batch_size to at most {per_rank} or '
            'train_dataloader.drop_last=False.')
