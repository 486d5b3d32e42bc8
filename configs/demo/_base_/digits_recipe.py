# The short recipe of the offline demo (configs/demo/*_digits.py, run by
# tools/quickstart.sh) on scikit-learn's digits: 1,437 training images,
# ~23 iterations per epoch at batch 64, a few epochs on a CPU. The demo
# configs inherit their model / distiller from the CIFAR-100 configs and
# take these pieces into the matching keys in their own body
# (`optim_wrapper = {{_base_.digits_optim_wrapper}}` ...): MMEngine refuses
# the same key in two `_base_` files, hence the `digits_` names here.
# The teacher (resnet56) and the three student runs (resnet20 alone, the
# CRD + KD baseline, SAKD) share all of it but the learning rate; their
# default max_epochs also differ (set in each config, overridden by tools/quickstart.sh's
# TEACHER_EPOCHS / EPOCHS and tools/analysis/reproduce.py --epochs).

# Per-channel statistics of the training digits on the 0..255 scale (grey
# repeated over three channels), not CIFAR's: inputs are ~N(0, 1).
digits_data_preprocessor = dict(
    mean=[77.87, 77.87, 77.87], std=[82.53, 82.53, 82.53])

# Augmentation: random shifts of up to 2 pixels (a quarter of a pixel of
# the original 8x8 image per pixel of padding, i.e. half an original pixel),
# and no horizontal flip (a flipped 2, 3, 7... is not the same digit).
digits_train_pipeline = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=2),
    dict(type='mmpretrain.PackInputs'),
]
# the same for the CRD runs, whose samples also carry their index and
# negatives
digits_crd_train_pipeline = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=2),
    dict(type='mmsakd.PackCRDInputs'),
]

# SGD (Nesterov), momentum 0.9, weight decay 5e-4, batch 64 (the CIFAR
# recipe's batch and decay; the paramwise sakd_ rule is kept): lr 0.1 for
# the teacher; lr 0.05, the CIFAR KD recipe's, for the three student runs.
# At lr 0.1 the student's eval-mode BatchNorm statistics lag its weights
# in the first epochs, so its routed cross-entropy spikes (about 30) and
# one such step can push SAKD's policy to "never distil" for good (seen
# with seed 0: both rates at 0 from epoch 2 on); at 0.05 the policy keeps
# distilling (seeds 0, 1 and 2).
digits_teacher_optim_wrapper = dict(optimizer=dict(lr=0.1, nesterov=True))
digits_optim_wrapper = dict(optimizer=dict(lr=0.05, nesterov=True))

# A linear warm-up over the first 46 iterations (two epochs at batch 64,
# from lr 0.005), so the deep resnet56 does not blow up in its first steps
# at the full lr, then a cosine decay to 0 over the whole run, evaluated per
# iteration: the last epochs train at a tiny lr, so the running BN
# statistics match the final weights at evaluation. Both adapt to any
# max_epochs with nothing else changed: the warm-up is counted in
# iterations and the cosine has no `end`, which MMEngine's Runner sets to
# train_cfg.max_epochs; so `--cfg-options train_cfg.max_epochs=N`
# (tools/quickstart.sh's TEACHER_EPOCHS / EPOCHS) and
# tools/analysis/reproduce.py --epochs need nothing rescaled, and a 1-epoch
# run (QUICK=1, the end-to-end tests) works too (a cosine begun after a
# 1-epoch warm-up would have begin == end there, which MMEngine refuses).
# The validation top-1 stays near chance (10 %) for the first 2-3 epochs
# while the BN statistics follow the fast-moving weights, then climbs to
# >= 98 % (resnet56, epoch 6).
digits_param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=46),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        convert_to_iter_based=True),
]
