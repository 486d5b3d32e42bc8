"""CIFAR-100 through MMPretrain, with clear errors and an explicit switch for
copies that are not byte-identical to the official release."""
import os.path as osp
from typing import List, Optional

import mmengine.dist as dist
import numpy as np
from mmengine.fileio import LocalBackend, get, get_file_backend, join_path
from mmengine.logging import MMLogger
from mmpretrain.datasets import CIFAR100 as MMPretrainCIFAR100
from mmpretrain.datasets.utils import check_md5, download_and_extract_archive

from mmsakd.registry import DATASETS
from .non_empty import NonEmptyDatasetMixin
from .safe_pickle import load_data_pickle


@DATASETS.register_module()
class CIFAR100(NonEmptyDatasetMixin, MMPretrainCIFAR100):
    """MMPretrain's ``CIFAR100`` (Krizhevsky, "Learning Multiple Layers of
    Features from Tiny Images", 2009) with these additions.

    * A missing dataset that cannot be downloaded (offline machine,
      ``download=False``) raises an error that says where to put the files:
      ``<data_root>/cifar-100-python/{train,test,meta}`` from the official
      ``cifar-100-python.tar.gz``.
    * ``verify_checksum=False`` loads a copy in the official file layout whose
      files are not byte-identical to the release (e.g. a re-split of the same
      images): the md5 check is skipped, a warning is logged, and the files
      must still exist. It is never turned off silently; the default checks
      every file's md5 exactly as MMPretrain does.
    * The files are unpickled with an allow-list
      (:mod:`mmsakd.datasets.safe_pickle`): a file that would run code while
      being loaded is refused, a corrupt one is called corrupt, both naming
      the file. Labels outside the 100 classes and empty splits are errors
      that name the file or the setting.

    Args:
        data_root (str): Folder that holds ``cifar-100-python/``.
        split (str): ``'train'`` or ``'test'``.
        download (bool): Download the official archive when the files are
            missing or corrupt. Defaults to True.
        verify_checksum (bool): Check the md5 of every file. Defaults to True.
        **kwargs: Other arguments of MMPretrain's ``CIFAR100`` / MMEngine's
            ``BaseDataset`` (``pipeline``, ``indices``, ``test_mode``...).
    """

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 metainfo: Optional[dict] = None,
                 download: bool = True,
                 verify_checksum: bool = True,
                 **kwargs):
        if not isinstance(verify_checksum, bool):
            raise TypeError('dataset.verify_checksum must be True or False, '
                            f'got {verify_checksum!r}')
        self.verify_checksum = verify_checksum
        super().__init__(
            data_root=data_root,
            split=split,
            metainfo=metainfo,
            download=download,
            **kwargs)

    def _expected_files(self) -> list:
        names = [n for n, _ in self.train_list + self.test_list]
        names.append(self.meta['filename'])
        return [
            osp.join(self.data_prefix['root'], self.base_folder, n)
            for n in names
        ]

    def _check_integrity(self) -> bool:
        if self.verify_checksum:
            return super()._check_integrity()
        return all(osp.isfile(f) for f in self._expected_files())

    def _missing_message(self) -> str:
        root = self.data_prefix['root']
        files = ', '.join(self._expected_files())
        how = ('set dataset.download=True on a machine with internet access'
               if not self.download else f'download {self.url} by hand')
        msg = (f'CIFAR-100 not found or corrupt under data_root={root!r}: '
               f'expected {files}. To fix: {how} and extract it into '
               f'{root!r} (giving {osp.join(root, self.base_folder)}), or '
               'point '
               'dataset.data_root at a folder that holds it.')
        if self.verify_checksum:
            msg += (' A copy in the official layout that is not byte-'
                    'identical to the release (e.g. re-split) needs '
                    'dataset.verify_checksum=False.')
        return msg

    def _ensure_files(self) -> None:
        """Download the archive if allowed and needed (MMPretrain's rule)."""
        root = self.data_prefix['root']
        if dist.is_main_process() and not self._check_integrity():
            backend = get_file_backend(root, enable_singleton=True)
            if not (self.download and isinstance(backend, LocalBackend)):
                raise RuntimeError(self._missing_message())
            download_and_extract_archive(
                self.url, root, filename=self.filename, md5=self.tgz_md5)
        dist.barrier()
        if not self._check_integrity():
            raise RuntimeError(self._missing_message())

    def _read_split(self, name: str):
        """The images and labels of one file, checked."""
        path = join_path(self.data_prefix['root'], self.base_folder, name)
        entry = load_data_pickle(get(path), path)
        key = 'labels' if isinstance(entry, dict) and 'labels' in entry \
            else 'fine_labels'
        if not (isinstance(entry, dict) and 'data' in entry and key in entry):
            raise ValueError(
                f'{path} is not a CIFAR-100 data file: expected a dict with '
                f'"data" and "fine_labels", got {type(entry).__name__}' +
                (f' with keys {sorted(map(str, entry))[:8]}' if isinstance(
                    entry, dict) else ''))
        imgs = np.asarray(entry['data'])
        labels = np.asarray(entry[key])
        if imgs.ndim != 2 or imgs.shape[1] != 3 * 32 * 32 or \
                labels.shape != (imgs.shape[0], ):
            raise ValueError(
                f'{path}: "data" must be N x 3072 (32x32 RGB) with one label '
                f'each, got data of shape {imgs.shape} and {labels.shape} '
                'labels')
        num_classes = len(self.CLASSES) if self.CLASSES else 100
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f'{path}: labels must be integers, got dtype '
                             f'{labels.dtype}')
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            raise ValueError(
                f'{path}: {bad.size} label(s) outside the {num_classes} '
                f'classes (0..{num_classes - 1}), e.g. {int(labels[bad[0]])} '
                f'at sample {int(bad[0])}. Fix the file\'s {key}, or set '
                'dataset.metainfo=dict(classes=[...]) (and the model\'s '
                'head.num_classes) to the real class count.')
        return imgs, labels.tolist()

    def load_data_list(self) -> List[dict]:
        if not self.verify_checksum:
            MMLogger.get_current_instance().warning(
                'CIFAR100: verify_checksum=False, the md5 of the files under '
                f'{self.data_prefix["root"]} is not checked.')
        try:
            self._ensure_files()
        except (RuntimeError, AssertionError, OSError) as e:
            if self._check_integrity():
                raise
            raise RuntimeError(self._missing_message()) from e
        files = self.train_list if self.split == 'train' else self.test_list
        imgs, labels = [], []
        for name, _ in files:
            data, gt = self._read_split(name)
            imgs.append(data)
            labels += gt
        # N x 3072 (CHW) -> N x 32 x 32 x 3
        imgs = np.vstack(imgs).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
        if self.CLASSES is None:
            self._load_meta()
        return [
            dict(img=img, gt_label=int(label))
            for img, label in zip(imgs, labels)
        ]

    def _load_meta(self) -> None:
        path = join_path(self.data_prefix['root'], self.base_folder,
                         self.meta['filename'])
        if self.verify_checksum and not check_md5(path, self.meta['md5']):
            raise RuntimeError(self._missing_message())
        meta = load_data_pickle(get(path), path)
        self._metainfo.setdefault('classes', meta[self.meta['key']])
