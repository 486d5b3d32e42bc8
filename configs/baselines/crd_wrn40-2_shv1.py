# Contrastive representation distillation (Tian et al., ICLR 2020,
# arXiv 1910.10699) + KD, wrn_40_2 -> ShuffleNetV1 on CIFAR-100:
# the resnet56 -> resnet20 CRD baseline (beta = 0.8, same NCE and
# memory-bank settings) with this pair's networks and the embedding
# inputs resized to their pooled widths (128 and 960).
# lr 0.01, as the recipe uses for ShuffleNetV1 students.
#
# Teacher: train configs/vanilla/wrn_40_2_cifar100.py (or convert a CIFAR
# KD benchmark checkpoint with
# tools/model_converters/repdistiller2mmsakd.py) and put it at
# `teacher_ckpt`, or pass --cfg-options model.teacher_ckpt=PATH.
_base_ = ['./crd_res56_res20.py']

teacher_ckpt = 'checkpoints/wrn_40_2_cifar100.pth'

model = dict(
    architecture=dict(
        cfg_path='mmsakd::vanilla/shufflenetv1_cifar100.py'),
    teacher=dict(
        cfg_path='mmsakd::vanilla/wrn_40_2_cifar100.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        connectors=dict(
            s_embed=dict(dim_in=960),
            t_embed=dict(dim_in=128))))

optim_wrapper = dict(optimizer=dict(lr=0.01))
