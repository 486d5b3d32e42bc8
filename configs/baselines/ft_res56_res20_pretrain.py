# Factor transfer, stage 1 (Kim et al., NeurIPS 2018, arXiv 1802.04977): the
# paraphraser learns to reconstruct the teacher's layer3 output (64 x 8 x 8)
# through 32 factors (rate k = 0.5), MSE, 30 epochs, SGD lr 0.01, momentum
# 0.9, weight decay 5e-4, constant lr, batch 64: the pre-training of
# RepDistiller and SAKD (helper/pretrain.py), whose Paraphraser (no BN,
# LeakyReLU 0.1) is MMRazor's, used through mmsakd.FactorParaphraser. The
# student is neither trained nor evaluated by a loss here. ft_res56_res20.py
# then loads the paraphraser from this run's checkpoint.
_base_ = ['./kd_res56_res20.py']

model = dict(
    calculate_student_loss=False,
    student_trainable=False,
    distiller=dict(
        student_recorders=dict(_delete_=True),
        teacher_recorders=dict(
            _delete_=True,
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        distill_losses=dict(
            _delete_=True,
            loss_paraphraser=dict(
                type='L2Loss', normalize=False, div_element=True)),
        connectors=dict(
            t_factor=dict(
                type='mmsakd.FactorParaphraser',
                phase='pretrain',
                in_channel=64,
                out_channel=32)),
        loss_forward_mappings=dict(
            _delete_=True,
            # the reconstruction of the teacher feature vs the feature itself
            loss_paraphraser=dict(
                s_feature=dict(
                    from_student=False, recorder='feat3',
                    connector='t_factor'),
                t_feature=dict(from_student=False, recorder='feat3')))))

optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = dict(_delete_=True, type='ConstantLR', factor=1.0)
train_cfg = dict(max_epochs=30)
# the student runs without gradient here, so DDP must not wait for its
# parameters' gradients
find_unused_parameters = True
