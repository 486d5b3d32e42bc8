"""MMPretrain's ``PackInputs`` that also packs CRD's sample indices."""
from typing import Sequence

import numpy as np
import torch
from mmpretrain.datasets.transforms import PackInputs

from mmsakd.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackCRDInputs(PackInputs):
    """Pack inputs for CRD (Tian, Krishnan & Isola, "Contrastive
    Representation Distillation", ICLR 2020, https://arxiv.org/abs/1910.10699).

    Packs the image, label and meta keys exactly as MMPretrain's
    ``PackInputs`` and, from the keys that
    :class:`~mmsakd.datasets.CRDSampleDataset` adds, sets two data fields of
    the ``DataSample`` with the names MMRazor's ``CRDLoss`` reads:

    * ``sample_idx``: 0-d ``torch.long`` tensor, the memory-bank row;
    * ``contrast_sample_idxs``: 1-d ``torch.long`` tensor of length
      ``neg_num + 1``, positive first, from ``contrast_idx`` (or from
      ``contrast_sample_idxs``, the key of MMRazor's ``CRDDataset``).

    Either is left out when the sample dict lacks it (``test_mode``,
    ``is_sample=False``); without contrast indices ``CRDLoss`` samples its
    negatives itself. MMEngine's ``pseudo_collate`` keeps the data samples as
    a list, and MMPretrain's ``ClsDataPreprocessor`` passes them on with
    these fields untouched. It moves only the images and labels to the
    model's device, so on a GPU these indices reach the model on the CPU;
    :class:`~mmsakd.models.losses.CRDLoss` moves them to its embeddings'
    device before they index the memory bank, so nothing needs to be done
    here or in the data preprocessor.

    It replaces MMRazor's ``PackCRDClsInputs``, which needs the retired
    ``mmcls`` package, converts ``sample_idx`` only when it is a Python
    ``int``, and drops ``sample_idx`` from ``meta_keys`` by swapping them for
    a generator that is used up after the first sample, so later samples
    lose all their meta keys. Here ``sample_idx`` is removed from the meta
    keys once at construction: a data element cannot hold the same name as
    meta info and as data.

    Put it last in the pipeline of the dataset wrapped by
    ``CRDSampleDataset`` (see there for a full config).

    Args:
        input_key (str): The key of the model input. Defaults to 'img'.
        algorithm_keys (Sequence[str]): Further keys stored as data fields,
            as in ``PackInputs``. Defaults to ().
        meta_keys (Sequence[str]): Meta keys, as in ``PackInputs``;
            ``'sample_idx'`` is dropped from them since it becomes a data
            field. Defaults to ``PackInputs.DEFAULT_META_KEYS``.

    Example:
        >>> pipeline = [
        ...     dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
        ...     dict(type='mmsakd.PackCRDInputs'),
        ... ]
    """

    def __init__(self,
                 input_key: str = 'img',
                 algorithm_keys: Sequence[str] = (),
                 meta_keys: Sequence[str] = PackInputs.DEFAULT_META_KEYS):
        super().__init__(
            input_key=input_key,
            algorithm_keys=tuple(algorithm_keys),
            meta_keys=tuple(k for k in meta_keys if k != 'sample_idx'))

    def transform(self, results: dict) -> dict:
        """Pack ``results`` as ``PackInputs`` does, plus the CRD indices.

        Args:
            results (dict): The sample dict from the pipeline.

        Returns:
            dict: ``inputs`` and ``data_samples`` (a ``DataSample``).
        """
        packed = super().transform(results)
        data_sample = packed['data_samples']
        if 'sample_idx' in results:
            data_sample.set_field(
                torch.tensor(int(results['sample_idx']), dtype=torch.long),
                'sample_idx')
        contrast = results.get('contrast_idx')
        if contrast is None:
            contrast = results.get('contrast_sample_idxs')
        if contrast is not None:
            contrast = np.asarray(contrast, dtype=np.int64).reshape(-1)
            data_sample.set_field(
                torch.from_numpy(contrast), 'contrast_sample_idxs')
        return packed
