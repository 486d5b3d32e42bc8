# Offline demo of configs/baselines/crd_res56_res20.py (CRD + KD without
# SAKD, resnet56 -> resnet20) on scikit-learn's digits: the baseline of
# configs/demo/crd_res56_res20_digits.py, with the same data, recipe and
# epochs as every student run of tools/quickstart.sh
# (./_base_/digits_recipe.py: digits mean/std, shifts of up to 2 pixels and
# no flip, SGD lr 0.05 with a 46-iteration warm-up and a cosine decay to 0,
# batch 64, 8 epochs), the same teacher checkpoint and CRD sizes (a memory
# bank of the 1,437 training images and 1,024 negatives instead of 16,384).
# The teacher comes from configs/demo/resnet56_digits.py.
_base_ = ['../baselines/crd_res56_res20.py', './_base_/digits_recipe.py']

model = dict(
    teacher_ckpt='work_dirs/demo/teacher_resnet56_digits.pth',
    distiller=dict(
        distill_losses=dict(loss_crd=dict(sample_n=1437, neg_num=1024))))

# the shared digits recipe (./_base_/digits_recipe.py)
data_preprocessor = {{_base_.digits_data_preprocessor}}
optim_wrapper = {{_base_.digits_optim_wrapper}}
param_scheduler = {{_base_.digits_param_scheduler}}
# the default of the three student runs (EPOCHS of tools/quickstart.sh)
train_cfg = dict(max_epochs=8)

train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        neg_num=1024,
        dataset=dict(
            _delete_=True,
            type='mmsakd.SklearnDigits',
            split='train',
            pipeline={{_base_.digits_crd_train_pipeline}})))
val_dataloader = dict(
    num_workers=0,
    dataset=dict(
        _delete_=True,
        type='mmsakd.SklearnDigits',
        split='test',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
