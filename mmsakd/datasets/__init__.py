from .cifar import CIFAR100
from .sklearn_digits import SklearnDigits

__all__ = ['CIFAR100', 'SklearnDigits']
