# vgg13 trained alone on CIFAR-100 with the CIFAR KD benchmark recipe
# (a teacher of the SAKD experiments; its best checkpoint is the
# `teacher_ckpt` of the distillation configs).
_base_ = [
    '../_base_/models/cifar/vgg13.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]
