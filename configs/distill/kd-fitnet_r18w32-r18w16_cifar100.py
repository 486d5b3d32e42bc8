# Non-adaptive MMRazor distillation on CIFAR-100: logits KD (Hinton et al.,
# 2015, T=4) plus a FitNets hint (Romero et al., ICLR 2015) on the layer3
# output through a 1x1 conv connector. ResNet-18 at half width teaches
# ResNet-18 at quarter width.
#
# Teacher: train configs/vanilla/resnet18-w32_cifar100.py first, then put its
# checkpoint at `teacher_ckpt` or pass --cfg-options model.teacher_ckpt=PATH.
_base_ = [
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]

teacher_ckpt = 'checkpoints/resnet18-w32_cifar100.pth'

model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture=dict(
        cfg_path='mmsakd::vanilla/resnet18-w16_cifar100.py',
        pretrained=False),
    teacher=dict(
        cfg_path='mmsakd::vanilla/resnet18-w32_cifar100.py',
        pretrained=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            feat3=dict(type='ModuleOutputs', source='backbone.layer3'),
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            feat3=dict(type='ModuleOutputs', source='backbone.layer3'),
            logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=4, loss_weight=1.0),
            loss_fitnet=dict(type='L2Loss', loss_weight=10.0)),
        connectors=dict(
            s_feat3=dict(
                type='ConvModuleConnector',
                in_channel=64,
                out_channel=128,
                norm_cfg=dict(type='BN'),
                act_cfg=None)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_fitnet=dict(
                s_feature=dict(
                    from_student=True, recorder='feat3',
                    connector='s_feat3'),
                t_feature=dict(from_student=False, recorder='feat3')))))

val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
