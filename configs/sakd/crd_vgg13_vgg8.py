# Spot-adaptive CRD + KD, vgg13 -> vgg8 on CIFAR-100 (Song et al.,
# "Spot-adaptive Knowledge Distillation", IEEE TIP 2022, arXiv 2205.02399): the
# baseline config with its model block swapped. gamma = 1.0 (the SAKD code's
# CIFAR-100 setting).
# Homogeneous pair (same family), so the policy starts by distilling everywhere
# (+10 on every "distill" logit).
_base_ = ['../baselines/crd_vgg13_vgg8.py']

model = dict(
    type='mmsakd.SpotAdaptiveDistill',
    sakd=dict(
        policy=dict(type='mmsakd.SpotPolicyHead', tau=5.0, init='distill_all'),
        gamma=1.0,
        hinge=True))
