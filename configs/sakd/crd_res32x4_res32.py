# Spot-adaptive CRD + KD, resnet32x4 -> resnet32 on CIFAR-100 (Song et al.,
# "Spot-adaptive Knowledge Distillation", IEEE TIP 2022, arXiv 2205.02399): the
# baseline config with its model block swapped. gamma = 1.0 (the SAKD code's
# CIFAR-100 setting).
# Heterogeneous pair (the same ResNet layout but 4x the channels, 256 vs 64
# pooled): the teacher's segments are no safe default for the student, so the
# policy keeps PyTorch's Linear init (no +10 "distill" bias) and its decisions
# start near 50/50.
_base_ = ['../baselines/crd_res32x4_res32.py']

model = dict(
    type='mmsakd.SpotAdaptiveDistill',
    sakd=dict(
        policy=dict(type='mmsakd.SpotPolicyHead', tau=5.0, init='default'),
        gamma=1.0,
        hinge=True))
