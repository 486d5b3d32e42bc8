# Correlation congruence (Peng et al., ICCV 2019, arXiv 1904.01802) + KD,
# resnet56 -> resnet20: correlations of the 128-d embeddings of the pooled
# features, beta = 0.02.
# the neck returns a tuple; data_idx=0 is the pooled (N, C) tensor
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_cc=dict(
                type='mmsakd.CCLoss',
                student_channels=64,
                teacher_channels=64,
                feat_dim=128,
                loss_weight=0.02)),
        loss_forward_mappings=dict(
            loss_cc=dict(
                s_feature=dict(
                    from_student=True, recorder='pool', data_idx=0),
                t_feature=dict(
                    from_student=False, recorder='pool', data_idx=0)))))
