# shufflenetv1 trained alone on CIFAR-100 with the CIFAR KD benchmark recipe
# (the student's vanilla baseline; distillation configs build the
# student from this file).
_base_ = [
    '../_base_/models/cifar/shufflenetv1.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]
# the recipe uses lr 0.01 for MobileNetV2 and ShuffleNet
optim_wrapper = dict(optimizer=dict(lr=0.01))
