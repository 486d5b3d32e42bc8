from .cifar import CIFAR100
from .crd_sample_dataset import CRDSampleDataset
from .pack_crd_inputs import PackCRDInputs
from .sklearn_digits import SklearnDigits

__all__ = ['CIFAR100', 'CRDSampleDataset', 'PackCRDInputs', 'SklearnDigits']
