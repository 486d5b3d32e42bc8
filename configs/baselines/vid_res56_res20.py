# Variational information distillation (Ahn et al., CVPR 2019,
# arXiv 1904.05835) + KD, resnet56 -> resnet20: layer1, layer2 and layer3
# outputs, one regressor and learned variance per stage, beta = 1.
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            feat1=dict(type='ModuleOutputs', source='backbone.layer1'),
            feat2=dict(type='ModuleOutputs', source='backbone.layer2'),
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        teacher_recorders=dict(
            feat1=dict(type='ModuleOutputs', source='backbone.layer1'),
            feat2=dict(type='ModuleOutputs', source='backbone.layer2'),
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        distill_losses=dict(
            loss_vid1=dict(
                type='mmsakd.VIDLoss',
                student_channels=16,
                teacher_channels=16,
                loss_weight=1.0),
            loss_vid2=dict(
                type='mmsakd.VIDLoss',
                student_channels=32,
                teacher_channels=32,
                loss_weight=1.0),
            loss_vid3=dict(
                type='mmsakd.VIDLoss',
                student_channels=64,
                teacher_channels=64,
                loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_vid1=dict(
                s_feature=dict(from_student=True, recorder='feat1'),
                t_feature=dict(from_student=False, recorder='feat1')),
            loss_vid2=dict(
                s_feature=dict(from_student=True, recorder='feat2'),
                t_feature=dict(from_student=False, recorder='feat2')),
            loss_vid3=dict(
                s_feature=dict(from_student=True, recorder='feat3'),
                t_feature=dict(from_student=False, recorder='feat3')))))
