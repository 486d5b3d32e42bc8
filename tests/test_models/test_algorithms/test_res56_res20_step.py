"""The resolved spots, losses and gradients of one step of every
resnet56 -> resnet20 SAKD config are exactly those of the reference file
(``tests/data/sakd_res56_res20_step.json``), which was written by the
first implementation of the SAKD core before its spots were resolved from
tensors. Any change to the training step shows here."""
import json

import pytest

from tests.test_models.test_algorithms.res56_res20_step import (CONFIGS,
                                                                REFERENCE,
                                                                one_step)


@pytest.fixture(scope='module')
def reference():
    with open(REFERENCE) as f:
        return json.load(f)


def test_reference_covers_every_config(reference):
    assert sorted(reference) == CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_one_step_is_unchanged(name, reference):
    assert one_step(name) == reference[name]
