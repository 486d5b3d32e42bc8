# vgg8 trained alone on CIFAR-100 with the CIFAR KD benchmark recipe
# (the student's vanilla baseline; distillation configs build the
# student from this file).
_base_ = [
    '../_base_/models/cifar/vgg8.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]
