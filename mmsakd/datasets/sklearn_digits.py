"""The scikit-learn digits images as a small, offline CIFAR-like dataset."""
from typing import Optional

import numpy as np
from mmpretrain.datasets import BaseDataset

from mmsakd.registry import DATASETS
from .non_empty import NonEmptyDatasetMixin


@DATASETS.register_module()
class SklearnDigits(NonEmptyDatasetMixin, BaseDataset):
    """Handwritten digits shipped with scikit-learn, shaped like CIFAR.

    The 1,797 real 8x8 grey images of the UCI "Optical Recognition of
    Handwritten Digits" set (Alpaydin & Kaynak, 1998), as bundled by
    ``sklearn.datasets.load_digits``, are scaled from 0..16 to 0..255,
    upsampled to ``img_size`` (bilinear) and repeated over three channels,
    so any CIFAR pipeline and model runs on them unchanged. Nothing is
    downloaded. The split is a fixed stratified one (seed 0): 1,437 train and
    360 test images with ``test_ratio=0.2``.

    It exists so that every real config can be tried offline (see
    ``configs/demo/``); accuracies on it say nothing about CIFAR-100.

    Args:
        split (str): ``'train'`` or ``'test'``.
        img_size (int): Output side length. Defaults to 32.
        test_ratio (float): Fraction of each class held out for ``'test'``.
        **kwargs: Other arguments of MMPretrain's ``BaseDataset``
            (``pipeline``, ``indices``, ``test_mode``...).
    """

    METAINFO = {'classes': tuple(str(i) for i in range(10))}

    def __init__(self,
                 split: str = 'train',
                 img_size: int = 32,
                 test_ratio: float = 0.2,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        if split not in ('train', 'test'):
            raise ValueError("dataset.split must be 'train' or 'test', "
                             f'got {split!r}')
        if not (isinstance(img_size, int) and img_size >= 8):
            raise ValueError(
                f'dataset.img_size must be an int >= 8, got {img_size!r}')
        if not 0 < test_ratio < 1:
            raise ValueError(
                f'dataset.test_ratio must be in (0, 1), got {test_ratio!r}')
        self.split = split
        self.img_size = img_size
        self.test_ratio = test_ratio
        kwargs.setdefault('test_mode', split == 'test')
        super().__init__(ann_file='', metainfo=metainfo, **kwargs)

    def load_data_list(self) -> list:
        import cv2
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        index = np.arange(len(digits.target))
        train_idx, test_idx = train_test_split(
            index,
            test_size=self.test_ratio,
            stratify=digits.target,
            random_state=0)
        chosen = np.sort(train_idx if self.split == 'train' else test_idx)
        data_list = []
        for i in chosen:
            img = (digits.images[i] * (255.0 / 16.0)).astype(np.float32)
            img = cv2.resize(
                img, (self.img_size, self.img_size),
                interpolation=cv2.INTER_LINEAR)
            img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
            data_list.append(
                dict(
                    img=np.repeat(img[..., None], 3, axis=2),
                    gt_label=int(digits.target[i])))
        return data_list

    def extra_repr(self) -> list:
        return [f'Split: \t{self.split}', f'Image size: \t{self.img_size}']
