"""MMRazor-style distillation configs over MMPretrain classifiers
(``tests/data/mmrazor_style/``) become spot-adaptive by the model type
alone: they build, resolve their spots from what their recorders record,
and train two iterations with a gradient on every trainable parameter."""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmsakd.registry import MODELS
from tests.helpers import REPO

CORPUS_DIR = osp.join(REPO, 'tests', 'data', 'mmrazor_style')
REFUSED_DIR = osp.join(REPO, 'tests', 'data', 'mmrazor_style_refused')
# what the build of each refused config says
REFUSED = {
    'deit_regnetx-400mf_deit-tiny':
    'returns the pair (class token, distillation token)',
}
CORPUS = sorted(
    osp.basename(p)[:-3] for p in glob.glob(osp.join(CORPUS_DIR, '*.py')))
BATCH = 4

# the spots each config resolves to: (student, teacher) feature spots
SPOTS = {
    'ab_backbone_convnext-femto_convnext-atto':
    [('backbone.stages.2', 'backbone.stages.2')],
    'at_backbone_efficientnet-b1_efficientnet-b0':
    [('backbone.layers.3', 'backbone.layers.3'),
     ('backbone.layers.5', 'backbone.layers.5')],
    'crd_neck_resnext50_mobilenet-v2': [('neck', 'neck')],
    'dkd_regnetx-800mf_regnetx-400mf': [],
    'fitnets_backbone_densenet121_mobilenet-v2':
    [('backbone.conv2', 'backbone.act[1]')],
    'ft_backbone_resnet50_resnet18': [('backbone.layer4', 'backbone.layer4')],
    'fitnets_backbone_logits_resnet34_resnet18':
    [('backbone.layer3', 'backbone.layer3'),
     ('backbone.layer4', 'backbone.layer4')],
    'kd_logits_shufflenet-v2-1x_mobilenet-v3-small': [],
    'rkd_neck_seresnet50_resnet18': [('neck', 'neck')],
    # token spots: an encoder layer, the class token; a ResNet map
    # (256, 4, 4) routed to and from a ViT layer's tokens (65, 192)
    'sp_backbone_resnet18_deit-tiny': [('backbone.layers.5', 'backbone.layer3')
                                       ],
    'sp_layers_deit-small_deit-tiny': [('backbone.layers.5',
                                        'backbone.layers.5'),
                                       ('backbone', 'backbone')],
}

# parameters that get no gradient by the config's design
NO_GRAD = {
    # MMRazor's Paraphraser in phase='train' runs its encoder under no_grad
    # (pre-trained in the FT pretrain stage); its decoder is unused
    'ft_backbone_resnet50_resnet18': 'distiller.connectors.loss_s4_tfeat.',
}


def test_the_corpus_spans_eight_backbone_families():
    assert sorted(SPOTS) == CORPUS
    families = set()
    for name in CORPUS:
        families.update(name.split('_')[-2:])
    families = {f.split('-')[0].rstrip('0123456789x') for f in families}
    assert len(families) >= 8, families


def swapped(name: str, folder: str = CORPUS_DIR) -> Config:
    cfg = Config.fromfile(osp.join(folder, f'{name}.py'))
    assert cfg.model.type == 'SingleTeacherDistill'
    assert 'sakd' not in cfg.model
    cfg.model.type = 'mmsakd.SpotAdaptiveDistill'
    return cfg


def batch(size: int, seed: int = 0, num_classes: int = 1000) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(BATCH):
        inputs.append(
            torch.randint(
                0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        sample = DataSample().set_gt_label(
            int(torch.randint(0, num_classes, (1, ), generator=g)))
        # what MMRazor's CRD dataset adds (used by the CRD config only)
        sample.set_data(
            dict(
                sample_idx=torch.tensor(i),
                contrast_sample_idxs=torch.randint(0, 64, (17, ),
                                                   generator=g)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.slow
@pytest.mark.parametrize('name', CORPUS)
def test_swapped_by_type_alone_trains_two_iterations(name):
    cfg = swapped(name)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    assert list(model.distiller.spot_table.names) == SPOTS[name]
    assert model.spot_names == [s for s, _ in SPOTS[name]] + ['logits']

    optim = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(
                type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
            paramwise_cfg=dict(
                custom_keys={'sakd_': dict(lr_mult=0.5, decay_mult=2.0)})))
    model.train()
    classes = cfg.get('num_classes', 1000)
    log = model.train_step(batch(cfg.input_size, num_classes=classes), optim)
    assert all(math.isfinite(float(v)) for v in log.values()), log
    # the second iteration by hand, to look at the gradients
    data = model.data_preprocessor(
        batch(cfg.input_size, seed=1, num_classes=classes), True)
    losses = model(**data, mode='loss')
    loss, log = model.parse_losses(losses)
    assert math.isfinite(loss.item())
    optim.backward(loss)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith('teacher.') for n in trainable)
    missing = [n for n, p in trainable.items() if p.grad is None]
    if name in NO_GRAD:
        assert missing and all(n.startswith(NO_GRAD[name])
                               for n in missing), missing[:5]
    else:
        assert not missing, missing[:5]
    optim.step()


def test_the_refused_corpus_is_listed():
    assert sorted(REFUSED) == sorted(
        osp.basename(p)[:-3] for p in glob.glob(osp.join(REFUSED_DIR, '*.py')))


@pytest.mark.parametrize('name', sorted(REFUSED))
def test_swapped_by_type_alone_fails_at_build_naming_why(name):
    cfg = swapped(name, REFUSED_DIR)
    # MMRazor's own algorithm builds it
    with DefaultScope.overwrite_default_scope('mmrazor'):
        baseline = copy.deepcopy(cfg.model)
        baseline.type = 'SingleTeacherDistill'
        MODELS.build(baseline)
        with pytest.raises(TypeError) as info:
            MODELS.build(cfg.model)
    assert REFUSED[name] in str(info.value)
