# Attention transfer on two stage outputs of EfficientNet + KD.
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
        cfg_path='mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py',
        pretrained=False),
    teacher=dict(
        cfg_path='mmpretrain::efficientnet/efficientnet-b1_8xb32_in1k.py',
        pretrained=False),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            s3=dict(type='ModuleOutputs', source='backbone.layers.3'),
            s5=dict(type='ModuleOutputs', source='backbone.layers.5'),
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            s3=dict(type='ModuleOutputs', source='backbone.layers.3'),
            s5=dict(type='ModuleOutputs', source='backbone.layers.5'),
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_at3=dict(type='ATLoss', loss_weight=250),
            loss_at5=dict(type='ATLoss', loss_weight=250),
            loss_kl=dict(type='KLDivergence', tau=4, loss_weight=1)),
        loss_forward_mappings=dict(
            loss_at3=dict(
                s_feature=dict(from_student=True, recorder='s3'),
                t_feature=dict(from_student=False, recorder='s3')),
            loss_at5=dict(
                s_feature=dict(from_student=True, recorder='s5'),
                t_feature=dict(from_student=False, recorder='s5')),
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
