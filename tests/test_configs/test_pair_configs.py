"""The CRD baseline and SAKD configs of the other CIFAR-100 pairs of the
SAKD code (sakd-reference section 3): each SAKD config is a one-block swap
of its baseline, starts the policy by distilling everywhere exactly for the
homogeneous pairs, and builds into a model whose policy reads the two
pooled features and whose loss step is finite. Training itself is covered
by the resnet56 -> resnet20 configs, which share everything else."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmsakd.registry import MODELS
from tests.helpers import REPO
from tests.test_configs.test_baselines import tiny_cifar_config

# pair: (teacher, student, teacher pooled width, student pooled width, homo)
PAIRS = {
    'res110_res32': ('resnet110', 'resnet32', 64, 64, True),
    'res32x4_res8x4': ('resnet32x4', 'resnet8x4', 256, 256, True),
    'vgg13_vgg8': ('vgg13', 'vgg8', 512, 512, True),
    'wrn40-2_wrn16-2': ('wrn_40_2', 'wrn_16_2', 128, 128, True),
    'res50_mv2': ('resnet50', 'mobilenetv2', 2048, 1280, False),
    'res50_vgg8': ('resnet50', 'vgg8', 2048, 512, False),
    'res32x4_res32': ('resnet32x4', 'resnet32', 256, 64, False),
    'vgg13_mv2': ('vgg13', 'mobilenetv2', 512, 1280, False),
    'wrn40-2_shv1': ('wrn_40_2', 'shufflenetv1', 128, 960, False),
}
# the recipe's lr for these students; every other pair keeps the base 0.05
SMALL_LR_STUDENTS = ('mobilenetv2', 'shufflenetv1')


def crd_configs(folder):
    return {
        osp.basename(p)[len('crd_'):-len('.py')]
        for p in glob.glob(f'{REPO}/configs/{folder}/crd_*.py')
    } - {'res56_res20'}


def test_every_pair_has_a_crd_baseline_and_a_sakd_config():
    assert crd_configs('baselines') == set(PAIRS)
    assert crd_configs('sakd') == set(PAIRS)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_baseline_uses_the_pair_and_its_pooled_widths(name):
    teacher, student, t_dim, s_dim, _ = PAIRS[name]
    cfg = Config.fromfile(f'{REPO}/configs/baselines/crd_{name}.py')
    model = cfg.model
    assert model.type == 'SingleTeacherDistill'
    assert model.architecture.cfg_path == (
        f'mmsakd::vanilla/{student}_cifar100.py')
    assert model.teacher.cfg_path == f'mmsakd::vanilla/{teacher}_cifar100.py'
    assert model.teacher_ckpt == f'checkpoints/{teacher}_cifar100.pth'
    connectors = model.distiller.connectors
    assert connectors.s_embed.dim_in == s_dim
    assert connectors.t_embed.dim_in == t_dim
    assert model.distiller.distill_losses.loss_crd.loss_weight == 0.8
    lr = 0.01 if student in SMALL_LR_STUDENTS else 0.05
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_sakd_config_swaps_only_the_model(name):
    homo = PAIRS[name][-1]
    sakd = Config.fromfile(f'{REPO}/configs/sakd/crd_{name}.py')
    base = Config.fromfile(f'{REPO}/configs/baselines/crd_{name}.py')
    differs = {k for k in set(sakd) | set(base) if sakd.get(k) != base.get(k)}
    assert differs == {'model'}, differs
    assert sakd.model.type == 'mmsakd.SpotAdaptiveDistill'
    assert sakd.model.sakd.gamma == 1.0
    assert sakd.model.sakd.policy.init == ('distill_all'
                                           if homo else 'default')
    # apart from the algorithm and its SAKD settings, the same model
    swapped = {
        k: v
        for k, v in sakd.model.items() if k not in ('type', 'sakd')
    }
    assert swapped == {k: v for k, v in base.model.items() if k != 'type'}


def crd_batch(n=4, num_classes=100, seed=0):
    """Random CIFAR images with labels and memory-bank rows for CRD."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    labels = torch.randint(0, num_classes, (n, ), generator=g)
    samples = []
    for i, label in enumerate(labels):
        sample = DataSample().set_gt_label(int(label))
        sample.set_field(torch.tensor(i), 'sample_idx')
        samples.append(sample)
    return x, samples


@pytest.fixture
def one_thread():
    # a batch of 4 gains nothing from intra-op threads, and on a busy
    # machine their synchronisation costs far more than the convolutions
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_sakd_config_builds_and_its_loss_is_finite(name, one_thread,
                                                   fake_cifar100, tmp_path):
    _, _, t_dim, s_dim, homo = PAIRS[name]
    cfg = tiny_cifar_config(f'{REPO}/configs/sakd/crd_{name}.py',
                            fake_cifar100, str(tmp_path))
    # a memory bank of 16 rows and 4 negatives: the batch below indexes
    # rows 0-3, and a full-size bank would only slow the build down
    cfg.model.distiller.distill_losses.loss_crd.update(neg_num=4, sample_n=16)
    assert 'input_shape' not in cfg.model.sakd  # the 32x32 default
    with DefaultScope.overwrite_default_scope('mmsakd'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'SpotAdaptiveDistill'
    assert model.sakd_policy.fc.in_features == t_dim + s_dim
    assert model.spot_names == ['neck', 'logits']
    bias = model.sakd_policy.fc.bias.detach()
    # +10 toward "distill" (component 0 of every pair) only when homogeneous
    assert bool((bias[0::2] - bias[1::2] > 5).all()) == homo

    torch.manual_seed(0)
    losses = model.loss(*crd_batch())
    for key in ('student.loss', 'distill.loss_kd', 'distill.loss_crd',
                'sakd.loss_route'):
        assert math.isfinite(losses[key].item()), key
