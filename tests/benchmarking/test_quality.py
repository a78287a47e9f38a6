"""Which optimizers and states the quality benchmark trains, and one of its rows end to end."""

import math

import pytest

from adamkit import specs
from adamkit.benchmarking import quality, settings
from adamkit.compact import policy
from adamkit.kernels import native


def test_every_optimizer_of_compare_whose_rule_has_8_bit_state_is_trained_in_compares_order():
    expected = [name for name, (spec, _) in specs.COMPARED.items() if all(slot.code is not None for slot in spec.slots)]
    assert list(quality.OPTIMIZERS) == expected and quality.FIRST == "adam"
    assert {"nadam", "radam", "adabelief", "adopt", "lion", "ademamix"} <= set(expected)


@pytest.mark.parametrize("name", quality.OPTIMIZERS)
def test_each_optimizer_takes_the_states_its_rule_takes(name):
    spec, variant = specs.COMPARED[name]
    states = quality.states_of(name)
    assert states[0] == quality.BASELINE and states[-1] == quality.YARDSTICK
    assert ("bf16" in states) == spec.counts_steps and "int8" in states
    assert math.isclose(quality.learning_rate(name, "cnn"), variant.compare_lrs["cnn"] / 10)


def test_the_full_run_trains_every_optimizer_on_mlp_and_adam_on_cnn():
    full = settings.QualitySettings(**settings.QUALITY_FULL)
    assert full.tasks == ("mlp", "cnn") and full.seeds == 3 and full.epochs_of("cnn") == 10
    assert full.optimizers_of("mlp") == quality.OPTIMIZERS and full.optimizers_of("cnn") == ("adam",)


@pytest.mark.skipif(not native.available(), reason="compact state needs the C kernels")
def test_a_row_of_lion_has_bf16_state_and_its_gaps_follow_from_its_losses():
    chosen = settings.QualitySettings(tasks=("mlp",), every_optimizer_on=("mlp",), seeds=1, epochs=1)
    with quality._one_thread():
        row = quality._row("mlp", "lion", 3e-5, chosen)
    assert policy.takes_compact_state(specs.LION, "bf16")
    assert list(row["losses"]) == ["fp32", "bf16", "int8", "fp64"] and row["label"] == "Lion" and row["lr"] == 3e-5
    base = row["losses"]["fp32"][0]
    assert 0 < base < math.log(10)
    for state in ("bf16", "int8", "fp64"):
        assert math.isclose(row["gap_of_mean"][state], row["losses"][state][0] / base - 1)
