# ResNet-18 at half width (stem and stage-1 32 channels, layer4 256), trained
# on CIFAR-100 with the benchmark recipe; the teacher of
# distill/kd-fitnet_r18w32-r18w16_cifar100.py.
_base_ = [
    '../_base_/models/resnet18_cifar.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(stem_channels=32, base_channels=32),
    head=dict(in_channels=256))
