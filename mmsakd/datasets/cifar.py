"""CIFAR-100 through MMPretrain, with clear errors and an explicit switch for
copies that are not byte-identical to the official release."""
import os.path as osp
from typing import Optional

from mmengine.logging import MMLogger
from mmpretrain.datasets import CIFAR100 as MMPretrainCIFAR100

from mmsakd.registry import DATASETS


@DATASETS.register_module()
class CIFAR100(MMPretrainCIFAR100):
    """MMPretrain's ``CIFAR100`` (Krizhevsky, "Learning Multiple Layers of
    Features from Tiny Images", 2009) with two additions.

    * A missing dataset that cannot be downloaded (offline machine,
      ``download=False``) raises an error that says where to put the files:
      ``<data_root>/cifar-100-python/{train,test,meta}`` from the official
      ``cifar-100-python.tar.gz``.
    * ``verify_checksum=False`` loads a copy in the official file layout whose
      files are not byte-identical to the release (e.g. a re-split of the same
      images): the md5 check is skipped, a warning is logged, and the files
      must still exist. It is never turned off silently; the default checks
      every file's md5 exactly as MMPretrain does.

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
               if not self.download else
               f'download {self.url} by hand')
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

    def load_data_list(self):
        if not self.verify_checksum:
            MMLogger.get_current_instance().warning(
                'CIFAR100: verify_checksum=False, the md5 of the files under '
                f'{self.data_prefix["root"]} is not checked.')
        try:
            return super().load_data_list()
        except (RuntimeError, AssertionError, OSError) as e:
            if self._check_integrity():
                raise
            raise RuntimeError(self._missing_message()) from e
