# Neuron selectivity transfer (Huang & Wang, arXiv 1707.01219) + KD,
# resnet56 -> resnet20: layer1, layer2 and layer3 outputs, beta = 50 each.
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
            loss_nst1=dict(type='mmsakd.NSTLoss', loss_weight=50.0),
            loss_nst2=dict(type='mmsakd.NSTLoss', loss_weight=50.0),
            loss_nst3=dict(type='mmsakd.NSTLoss', loss_weight=50.0)),
        loss_forward_mappings=dict(
            loss_nst1=dict(
                s_feature=dict(from_student=True, recorder='feat1'),
                t_feature=dict(from_student=False, recorder='feat1')),
            loss_nst2=dict(
                s_feature=dict(from_student=True, recorder='feat2'),
                t_feature=dict(from_student=False, recorder='feat2')),
            loss_nst3=dict(
                s_feature=dict(from_student=True, recorder='feat3'),
                t_feature=dict(from_student=False, recorder='feat3')))))
