# Offline demo of configs/vanilla/resnet20_cifar100.py: the student trained
# alone on scikit-learn's digits (shipped with scikit-learn, upsampled to
# 32x32), so nothing is downloaded. It is the "student alone" row of
# tools/quickstart.sh, next to configs/demo/crd_res56_res20_baseline_digits.py
# and configs/demo/crd_res56_res20_digits.py, with the same data, recipe and
# epochs (./_base_/digits_recipe.py: digits mean/std, shifts of up to 2
# pixels and no flip, SGD lr 0.05 with a 46-iteration warm-up and a cosine
# decay to 0, batch 64, 8 epochs).
_base_ = ['../vanilla/resnet20_cifar100.py', './_base_/digits_recipe.py']

# the shared digits recipe (./_base_/digits_recipe.py)
data_preprocessor = {{_base_.digits_data_preprocessor}}
optim_wrapper = {{_base_.digits_optim_wrapper}}
param_scheduler = {{_base_.digits_param_scheduler}}
# the three student runs share this default; EPOCHS / --cfg-options
# train_cfg.max_epochs=N override it and the schedule follows
train_cfg = dict(max_epochs=8)

train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        _delete_=True,
        type='mmsakd.SklearnDigits',
        split='train',
        pipeline={{_base_.digits_train_pipeline}}))
val_dataloader = dict(
    num_workers=0,
    dataset=dict(
        _delete_=True,
        type='mmsakd.SklearnDigits',
        split='test',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
