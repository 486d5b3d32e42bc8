# Contrastive representation distillation (Tian et al., ICLR 2020,
# arXiv 1910.10699) + KD, resnet56 -> resnet20: NCE of 128-d embeddings of
# the pooled features against a momentum memory bank of the 50,000 training
# images, 16,384 exact negatives, temperature 0.07, momentum 0.5, beta = 0.8.
# The training set is wrapped to sample the negatives of every image.
# the neck returns a tuple; data_idx=0 is the pooled (N, C) tensor
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck'),
            # the student's inputs (inputs, data_samples, mode): CRD reads
            # sample_idx and contrast_sample_idxs from the data samples
            inputs=dict(type='ModuleInputs', source='')),
        teacher_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_crd=dict(
                type='mmsakd.CRDLoss',
                loss_weight=0.8,
                neg_num=16384,
                sample_n=50000,
                dim_out=128,
                temperature=0.07,
                momentum=0.5)),
        connectors=dict(
            s_embed=dict(type='CRDConnector', dim_in=64, dim_out=128),
            t_embed=dict(type='CRDConnector', dim_in=64, dim_out=128)),
        loss_forward_mappings=dict(
            loss_crd=dict(
                s_feats=dict(
                    from_student=True, recorder='pool', data_idx=0,
                    connector='s_embed'),
                t_feats=dict(
                    from_student=False, recorder='pool', data_idx=0,
                    connector='t_embed'),
                data_samples=dict(
                    from_student=True, recorder='inputs', data_idx=1)))))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='mmsakd.CRDSampleDataset',
        neg_num=16384,
        sample_mode='exact',
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            split='train',
            pipeline=[
                dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
                dict(
                    type='mmpretrain.RandomFlip',
                    prob=0.5,
                    direction='horizontal'),
                dict(type='mmsakd.PackCRDInputs'),
            ])))
