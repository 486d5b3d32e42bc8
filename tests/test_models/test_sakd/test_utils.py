"""The helpers shared by cutting, executors and routing."""
import pytest
import torch
from mmcv.cnn.bricks.drop import DropPath
from torch import nn
from torchvision.ops import StochasticDepth

from mmsakd.models.sakd.utils import (eval_mode, last_output, same_tensor,
                                      train_mode_matters)
from .utils import build


class Noise(nn.Dropout):
    """A dropout layer whose name does not say so."""


class NotADropoutLayer(nn.Module):
    """A deterministic layer whose name says dropout."""

    def forward(self, x):
        return x


@pytest.mark.parametrize('module, matters', [
    (nn.Dropout(), True),
    (nn.Dropout2d(), True),
    (Noise(), True),
    (DropPath(0.1), True),
    (StochasticDepth(0.1, 'row'), True),
    (nn.BatchNorm2d(4), True),
    (NotADropoutLayer(), False),
    (nn.ReLU(), False),
])
def test_train_mode_matters_by_the_layer_type(module, matters):
    assert train_mode_matters(module.train()) is matters
    assert train_mode_matters(module.eval()) is False


def test_eval_mode_restores_each_flag_also_on_error():
    model = build('resnet8').train()
    model.backbone.layer1.eval()
    with pytest.raises(RuntimeError):
        with eval_mode(model):
            assert not any(m.training for m in model.modules())
            raise RuntimeError
    assert model.training and model.backbone.layer2.training
    assert not model.backbone.layer1.training


def test_last_output_and_same_tensor():
    a, b = torch.zeros(2, 3), torch.zeros(2, 3)
    assert last_output((a, b)) is b and last_output([a]) is a
    assert last_output(a) is a and last_output(()) == ()
    assert same_tensor(a, a) and same_tensor(a.view(6), a)
    assert not same_tensor(b, a) and not same_tensor(a[1], a)
    assert not same_tensor(None, a)
