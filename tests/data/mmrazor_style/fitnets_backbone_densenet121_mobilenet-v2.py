# FitNets on the backbone's tuple output (data_idx picks the last stage) +
# KD.
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
        cfg_path='mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
        pretrained=False),
    teacher=dict(
        cfg_path='mmpretrain::densenet/densenet121_4xb256_in1k.py',
        pretrained=False),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            bb=dict(type='ModuleOutputs', source='backbone'),
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            bb=dict(type='ModuleOutputs', source='backbone'),
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_hint=dict(type='L2Loss', loss_weight=1),
            loss_kl=dict(type='KLDivergence', tau=4, loss_weight=1)),
        connectors=dict(
            hint_sfeat=dict(
                type='ConvModuleConnector',
                in_channel=1280,
                out_channel=1024,
                norm_cfg=dict(type='BN'))),
        loss_forward_mappings=dict(
            loss_hint=dict(
                s_feature=dict(
                    from_student=True,
                    recorder='bb',
                    data_idx=0,
                    connector='hint_sfeat'),
                t_feature=dict(from_student=False, recorder='bb', data_idx=0)),
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
