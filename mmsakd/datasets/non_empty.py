"""A clear error for a dataset that ends up with no samples."""


class NonEmptyDatasetMixin:
    """Fail with the dataset's settings when it holds no samples.

    MMEngine's ``BaseDataset`` serialises its samples with
    ``np.concatenate``, so an empty split (an empty file, ``indices=0``, a
    filter that drops everything) fails with numpy's ``need at least one
    array to concatenate``, which names neither the dataset nor the setting.
    Put this mixin before the dataset class in the bases.
    """

    def _empty_message(self) -> str:
        settings = []
        for name in ('split', 'data_root'):
            value = getattr(self, name, None)
            if value not in (None, ''):
                settings.append(f'{name}={value!r}')
        indices = getattr(self, '_indices', None)
        if indices is not None:
            settings.append(f'indices={indices!r}')
        fix = ('dataset.indices must select at least one sample'
               if indices is not None else
               'point dataset.data_root at the files of a non-empty split')
        return (f'{type(self).__name__}({", ".join(settings)}) has no '
                f'samples: {fix}.')

    def _serialize_data(self):
        if not self.data_list:
            raise ValueError(self._empty_message())
        return super()._serialize_data()

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        super().full_init()
        if len(self) == 0:
            raise ValueError(self._empty_message())
