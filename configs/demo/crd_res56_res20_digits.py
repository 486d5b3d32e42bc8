# Offline demo of configs/sakd/crd_res56_res20.py (spot-adaptive CRD + KD,
# resnet56 -> resnet20) on scikit-learn's digits, the main job of
# tools/quickstart.sh. The data, recipe and epochs are those of every
# student run there (./_base_/digits_recipe.py: digits mean/std, shifts of
# up to 2 pixels and no flip, SGD lr 0.05 with a 46-iteration warm-up and a
# cosine decay to 0, batch 64, 8 epochs; the policy and adapters keep their
# lr / 2), so it compares with configs/demo/resnet20_digits.py and
# configs/demo/crd_res56_res20_baseline_digits.py. The two CRD settings
# that are sizes of the data change: the memory bank holds one entry per
# training image (1,437) and each class has about 1,290 negatives, so 1,024
# are drawn instead of 16,384. The teacher comes from
# configs/demo/resnet56_digits.py (tools/quickstart.sh trains it first).
_base_ = ['../sakd/crd_res56_res20.py', './_base_/digits_recipe.py']

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
