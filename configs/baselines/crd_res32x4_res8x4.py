# Contrastive representation distillation (Tian et al., ICLR 2020,
# arXiv 1910.10699) + KD, resnet32x4 -> resnet8x4 on CIFAR-100:
# the resnet56 -> resnet20 CRD baseline (beta = 0.8, same NCE and
# memory-bank settings) with this pair's networks and the embedding
# inputs resized to their pooled widths (256 and 256).
#
# Teacher: train configs/vanilla/resnet32x4_cifar100.py (or convert a CIFAR
# KD benchmark checkpoint with
# tools/model_converters/repdistiller2mmsakd.py) and put it at
# `teacher_ckpt`, or pass --cfg-options model.teacher_ckpt=PATH.
_base_ = ['./crd_res56_res20.py']

teacher_ckpt = 'checkpoints/resnet32x4_cifar100.pth'

model = dict(
    architecture=dict(
        cfg_path='mmsakd::vanilla/resnet8x4_cifar100.py'),
    teacher=dict(
        cfg_path='mmsakd::vanilla/resnet32x4_cifar100.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        connectors=dict(
            s_embed=dict(dim_in=256),
            t_embed=dict(dim_in=256))))
