"""The routing pass's reuse of the frozen teacher's own pass: where every
sample picked the teacher at the spots before a teacher segment, taking
that segment from the teacher's pass must give the same step bit for bit
(losses and every gradient), in the same process."""
import functools
import gc
import weakref

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsakd.models.backbones import CIFARResNet
from mmsakd.models.sakd import register_segment_describer
from mmsakd.models.sakd import routing as routing_module
from mmsakd.models.sakd.cutting import _DESCRIBERS
from mmsakd.models.sakd.teacher_reuse import TeacherPass, TeacherTaps, splice
from mmsakd.registry import MODELS
from tests.helpers import REPO
from tests.test_models.test_algorithms.res56_res20_step import (batch,
                                                                calibrate_bn)

# every feature spot picks the teacher for sure; only the first does; none
REGIMES = {
    'teacher_everywhere': None,
    'mixed_after_first': 1,
    'mixed_everywhere': 0,
}


def build(name: str, reuse: bool):
    cfg = Config.fromfile(f'{REPO}/configs/sakd/{name}.py')
    cfg.model.teacher_ckpt = None
    cfg.model.sakd['reuse_teacher_pass'] = reuse
    losses = cfg.model.distiller.distill_losses
    if 'loss_crd' in losses:
        losses.loss_crd.neg_num = 8
        losses.loss_crd.sample_n = 64
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    for net in (model.teacher, model.student):
        calibrate_bn(net, batch(seed=3)[0])
    return model


def set_gates(model, mixed_from) -> None:
    """Policy logits that pick the teacher for sure at the feature spots
    before ``mixed_from`` and mix (a fair coin) from there on; the logits
    spot always mixes."""
    fc = model.sakd_policy.fc
    spots = model.distiller.spot_table.num_decisions - 1
    with torch.no_grad():
        fc.weight.mul_(0.01)
        bias = fc.bias.view(-1, 2)
        bias.zero_()
        sure = spots if mixed_from is None else mixed_from
        bias[:sure, 0] = 30.0


def step(model, counter: dict) -> dict:
    model.train()
    x, samples = batch()
    torch.manual_seed(2)
    losses = model(x, samples, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    grads = {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }
    return dict(
        losses={
            k: v.detach()
            for k, v in losses.items()
        },
        grads=grads,
        spliced=counter.pop('n', 0))


@pytest.fixture
def splice_counter(monkeypatch):
    counter = {}

    def counting(*args):
        counter['n'] = counter.get('n', 0) + 1
        return splice(*args)

    monkeypatch.setattr(routing_module, 'splice', counting)
    return counter


@pytest.mark.parametrize('regime', list(REGIMES))
@pytest.mark.parametrize('name', [
    'at_res56_res20',
    pytest.param('fitnet_res56_res20', marks=pytest.mark.slow),
    pytest.param('crd_res56_res20', marks=pytest.mark.slow)
])
def test_reuse_gives_the_same_step_bit_for_bit(name, regime, splice_counter):
    assert_same_steps(name, regime, splice_counter)


def assert_same_steps(name: str, regime: str, splice_counter: dict) -> None:
    steps = []
    for reuse in (True, False):
        model = build(name, reuse)
        set_gates(model, REGIMES[regime])
        steps.append(step(model, splice_counter))
    reused, plain = steps
    spots = len(model.distiller.spot_table.boundaries)
    # segments taken from the teacher's pass (those after the first spot,
    # then the logits) where every sample picked the teacher before them:
    # all, only the one after the first spot (the logits for a one-spot
    # config), none
    expected = {
        'teacher_everywhere': spots,
        'mixed_after_first': 1,
        'mixed_everywhere': 0
    }[regime]
    assert (reused['spliced'], plain['spliced']) == (expected, 0)
    assert reused['losses'].keys() == plain['losses'].keys()
    for key, value in plain['losses'].items():
        assert torch.equal(reused['losses'][key], value), key
    assert reused['grads'].keys() == plain['grads'].keys()
    for key, value in plain['grads'].items():
        assert torch.equal(reused['grads'][key], value), key
    assert any(g.abs().sum() > 0 for k, g in reused['grads'].items()
               if k.startswith('sakd_policy'))


def test_teacher_records_hold_no_graph_after_the_step():
    model = build('at_res56_res20', True)
    set_gates(model, None)
    model.train()
    x, samples = batch()
    model(x, samples, mode='loss')
    records = [
        data
        for recorder in model.distiller.teacher_recorders.recorders.values()
        for data in recorder.data_buffer
    ]
    tensors = [r for r in records if isinstance(r, torch.Tensor)]
    assert tensors and not any(t.requires_grad for t in tensors)
    assert torch.is_grad_enabled()


def test_no_reuse_for_a_trainable_teacher_train_mode_bn_or_no_grad(
        splice_counter):
    model = build('at_res56_res20', True)
    set_gates(model, None)
    assert step(model, splice_counter)['spliced'] == 3
    model.teacher_trainable = True
    assert step(model, splice_counter)['spliced'] == 0
    model.teacher_trainable = False
    model.train()
    x, samples = batch()
    with torch.no_grad():
        model(x, samples, mode='loss')
    assert splice_counter == {}
    # a teacher BN layer in train mode would update its statistics again
    model.teacher.backbone.layer3[0].bn1.train()
    model(x, samples, mode='loss')
    assert splice_counter == {}
    model.teacher.eval()
    model(x, samples, mode='loss')
    assert splice_counter == {'n': 3}


def test_taps_capture_the_boundaries_with_their_graph():
    model = build('at_res56_res20', True)
    taps = model._teacher_taps
    table = model.distiller.spot_table
    executor = table.executors[1]
    x, samples = batch()
    model.teacher.eval()
    with taps.capture(True) as teacher_pass:
        model.teacher(x, samples, mode='loss')
    assert teacher_pass.graph
    everywhere = [True] * len(table.boundaries)
    first, captured = teacher_pass.take(everywhere)
    assert teacher_pass.take(everywhere) == (None, [])  # handed over
    boundaries = [t for _, t in table.boundaries]
    with torch.no_grad():
        expected = [executor.run(x, None, b) for b in boundaries]
        expected.append(executor.run(x))
    assert len(captured) == len(expected)
    for got, want in zip(captured, expected):
        assert torch.equal(got, want)
        assert got.requires_grad
    # the first spot's tensor, detached, for the routing pass's first
    # teacher segment
    assert torch.equal(first, expected[0]) and not first.requires_grad
    # the first is the root; each later one's graph reaches it
    (grad, ) = torch.autograd.grad(captured[1].sum(), captured[0])
    assert grad.shape == captured[0].shape
    # outside capture the hooks record nothing
    with torch.no_grad():
        model.teacher(x, samples, mode='loss')
    assert taps._captured == []


def test_without_the_graph_only_the_first_spot_is_reused():
    model = build('at_res56_res20', True)
    table = model.distiller.spot_table
    x, samples = batch()
    model.teacher.eval()
    with model._teacher_taps.capture() as teacher_pass, torch.no_grad():
        model.teacher(x, samples, mode='loss')
    assert not teacher_pass.graph
    first, captured = teacher_pass.take([True] * len(table.boundaries))
    with torch.no_grad():
        expected = table.executors[1].run(x, None, table.boundaries[0][1])
    assert torch.equal(first, expected) and captured == []


def test_a_tensor_changed_in_place_is_not_reused():
    model = build('at_res56_res20', True)
    taps = model._teacher_taps
    x, samples = batch()
    with taps.capture(True) as teacher_pass:
        model.teacher(x, samples, mode='loss')
        with torch.no_grad():
            taps._captured[1][0].mul_(2)
    first, captured = teacher_pass.take([True] * 3)
    # the first spot's tensor is still there, the prefix stops before the
    # changed one: nothing to splice
    assert first is not None and captured == []


def test_grad_mode_is_restored():
    model = build('at_res56_res20', True)
    taps = model._teacher_taps
    x, samples = batch()
    with torch.no_grad():
        with taps.capture(True):
            model.teacher(x, samples, mode='loss')
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


@pytest.fixture
def described_resnets():
    """CIFAR ResNets cut by a describer (their stages) instead of by
    tracing."""
    saved = dict(_DESCRIBERS)

    @register_segment_describer(CIFARResNet)
    def describe(backbone):
        return list(backbone.stage_names)

    yield
    _DESCRIBERS.clear()
    _DESCRIBERS.update(saved)


@pytest.mark.parametrize('regime', list(REGIMES))
def test_described_units_are_reused_bit_for_bit(regime, described_resnets,
                                                splice_counter):
    model = build('at_res56_res20', True)
    table = model.distiller.spot_table
    # described, not traced: the units are the stages themselves
    assert table.names == tuple(
        (f'backbone.layer{k}', f'backbone.layer{k}') for k in (1, 2, 3))
    assert model._teacher_taps.targets == [('backbone.layer1', 0),
                                           ('backbone.layer2', 0),
                                           ('backbone.layer3', 0), ('head', 0)]
    assert_same_steps('at_res56_res20', regime, splice_counter)


def tap_hooks(net: torch.nn.Module) -> int:
    """How many of the forward hooks on ``net``'s modules are taps'."""
    return sum(
        isinstance(hook, functools.partial)
        and isinstance(getattr(hook.func, '__self__', None), TeacherTaps)
        for m in net.modules() for hook in m._forward_hooks.values())


def forward_hooks(net: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in net.modules())


def test_remove_takes_the_hooks_off_the_teacher():
    model = build('at_res56_res20', True)
    taps = model._teacher_taps
    paths = len({p for p, _ in taps.targets})
    before = forward_hooks(model.teacher)
    assert tap_hooks(model.teacher) == paths == 4
    taps.remove()
    assert tap_hooks(model.teacher) == 0
    assert forward_hooks(model.teacher) == before - paths
    taps.remove()  # again: nothing left to remove
    assert forward_hooks(model.teacher) == before - paths


def test_the_hooks_go_with_the_model():
    model = build('at_res56_res20', True)
    teacher = model.teacher
    paths = len({p for p, _ in model._teacher_taps.targets})
    before = forward_hooks(teacher)
    assert tap_hooks(teacher) == paths
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
    assert tap_hooks(teacher) == 0
    assert forward_hooks(teacher) == before - paths


def test_splice_routes_the_gradient_through_the_recorded_graph():
    source = torch.randn(4, 3, requires_grad=True)
    output = (source * 3).relu()
    x = source.detach().clone().requires_grad_()
    y = splice(x, source, output)
    assert torch.equal(y, output) and not y.is_leaf
    (y * torch.arange(3.)).sum().backward()
    expected = 3 * (source > 0) * torch.arange(3.)
    assert torch.equal(x.grad, expected)


@pytest.mark.parametrize('regime', ['mixed_everywhere', 'mixed_after_first'])
def test_what_is_not_reused_is_freed_during_the_pass(regime, monkeypatch):
    """The teacher's graph beyond what the routing pass reuses must be
    freed when the pass starts (else its activations add to the step's
    peak memory), although the caller's frames hold the pass until the
    routing pass returns."""
    model = build('at_res56_res20', True)
    set_gates(model, REGIMES[regime])
    refs, alive = [], []
    take = TeacherPass.take

    def spy(self, teacher_everywhere):
        refs.extend(weakref.ref(t) for t in self._tensors)
        return take(self, teacher_everywhere)

    monkeypatch.setattr(TeacherPass, 'take', spy)
    # the last spot's adapter runs late in the pass
    model.sakd_routing.hints[-1].register_forward_hook(
        lambda *_: alive.extend(ref() is not None for ref in refs))
    model.train()
    x, samples = batch()
    losses = model(x, samples, mode='loss')
    # the first spot's root and the next spot's tensor stay in the graph
    # of the spliced segment; the rest is gone
    expected = {
        'mixed_everywhere': [False] * 4,
        'mixed_after_first': [True, True, False, False]
    }[regime]
    assert alive == expected
    sum(v for k, v in losses.items() if 'loss' in k).backward()
