# Activation-boundary loss on a stage output through a connector, plus KD,
# on ConvNeXt (no neck: the backbone pools before its final norm).
input_size = 64


def convnext(arch, channels):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(
            type='mmpretrain.ConvNeXt',
            arch=arch,
            drop_path_rate=0.1,
            gap_before_final_norm=True),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=1000,
            in_channels=channels,
            loss=dict(type='mmpretrain.CrossEntropyLoss')))


model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    architecture=convnext('atto', 320),
    teacher=convnext('femto', 384),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            s2=dict(type='ModuleOutputs', source='backbone.stages.2'),
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            s2=dict(type='ModuleOutputs', source='backbone.stages.2'),
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_ab=dict(type='ABLoss', loss_weight=1.0),
            loss_kl=dict(type='KLDivergence', tau=4, loss_weight=1)),
        connectors=dict(
            s2_sfeat=dict(
                type='ConvModuleConnector',
                in_channel=160,
                out_channel=192,
                norm_cfg=dict(type='BN'),
                act_cfg=None)),
        loss_forward_mappings=dict(
            loss_ab=dict(
                s_feature=dict(
                    from_student=True, recorder='s2', connector='s2_sfeat'),
                t_feature=dict(from_student=False, recorder='s2')),
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
