# RKD on the pooled features recorded inside the neck (neck.gap), as
# MMRazor's rkd config.
input_size = 64
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    architecture=dict(
        cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py',
        pretrained=False),
    teacher=dict(
        cfg_path='mmpretrain::seresnet/seresnet50_8xb32_in1k.py',
        pretrained=False),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            feat=dict(type='ModuleOutputs', source='neck.gap')),
        teacher_recorders=dict(
            feat=dict(type='ModuleOutputs', source='neck.gap')),
        distill_losses=dict(
            loss_dw=dict(
                type='DistanceWiseRKD', with_l2_norm=True, loss_weight=25),
            loss_aw=dict(
                type='AngleWiseRKD', with_l2_norm=True, loss_weight=50)),
        loss_forward_mappings=dict(
            loss_dw=dict(
                preds_S=dict(from_student=True, recorder='feat'),
                preds_T=dict(from_student=False, recorder='feat')),
            loss_aw=dict(
                preds_S=dict(from_student=True, recorder='feat'),
                preds_T=dict(from_student=False, recorder='feat')))))
