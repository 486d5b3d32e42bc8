# ResNet-18 at quarter width (layer4 128 channels) trained alone on CIFAR-100;
# the student of distill/kd-fitnet_r18w32-r18w16_cifar100.py.
_base_ = [
    '../_base_/models/resnet18_cifar.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    head=dict(in_channels=128))
