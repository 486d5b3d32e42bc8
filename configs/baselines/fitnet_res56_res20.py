# FitNets (Romero et al., ICLR 2015, arXiv 1412.6550) + KD, resnet56 ->
# resnet20: MSE between the regressed student layer2 output and the
# teacher's (32 x 16 x 16), beta = 1 as in the SAKD code (RepDistiller: 100).
# The regressor is conv1x1-BN-ReLU like RepDistiller's ConvReg (whose conv
# also has a bias, redundant before BN).
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            feat2=dict(type='ModuleOutputs', source='backbone.layer2')),
        teacher_recorders=dict(
            feat2=dict(type='ModuleOutputs', source='backbone.layer2')),
        distill_losses=dict(
            loss_fitnet=dict(
                type='L2Loss',
                normalize=False,
                div_element=True,
                loss_weight=1.0)),
        connectors=dict(
            s_feat2=dict(
                type='ConvModuleConnector',
                in_channel=32,
                out_channel=32,
                norm_cfg=dict(type='BN'),
                act_cfg=dict(type='ReLU'))),
        loss_forward_mappings=dict(
            loss_fitnet=dict(
                s_feature=dict(
                    from_student=True, recorder='feat2',
                    connector='s_feat2'),
                t_feature=dict(from_student=False, recorder='feat2')))))
