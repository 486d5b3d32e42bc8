# KD (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015,
# arXiv 1503.02531) from resnet56 to resnet20 on CIFAR-100: the base of every
# baseline in this folder, which add their distiller X to it. The baseline
# protocol of the SAKD code: loss = CE + alpha * KD + beta * X with
# alpha = 1 and T = 4, the CIFAR KD benchmark recipe.
#
# Teacher: train configs/vanilla/resnet56_cifar100.py (or convert a CIFAR KD
# benchmark checkpoint with tools/model_converters/repdistiller2mmsakd.py) and
# put it at `teacher_ckpt`, or pass --cfg-options model.teacher_ckpt=PATH.
_base_ = [
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]

teacher_ckpt = 'checkpoints/resnet56_cifar100.pth'

model = dict(
    type='SingleTeacherDistill',
    architecture=dict(
        cfg_path='mmsakd::vanilla/resnet20_cifar100.py', pretrained=False),
    teacher=dict(
        cfg_path='mmsakd::vanilla/resnet56_cifar100.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=4, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))))

val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
