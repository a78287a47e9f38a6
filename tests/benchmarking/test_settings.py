import argparse
import math
import shlex

import pytest

from adamkit.benchmarking import rule_cases, settings, workloads
from adamkit.cli import bench


def test_defaults_time_everything_with_at_least_ten_steps():
    chosen = settings.resolve()
    assert chosen.workloads == workloads.NAMES and chosen.rules == rule_cases.NAMES
    assert chosen.steps >= 10 and chosen.warmup >= 1
    assert not chosen.quick and chosen.scale == 1.0 and chosen.threads is None


def test_quick_shrinks_the_defaults_but_keeps_explicit_counts():
    quick = settings.resolve(quick=True)
    assert quick.steps < settings.resolve().steps
    assert quick.warmup >= 1
    explicit = settings.resolve(quick=True, steps=11, warmup=2)
    assert (explicit.steps, explicit.warmup) == (11, 2)


def test_names_are_case_insensitive_comma_separated_and_put_in_canonical_order():
    chosen = settings.resolve(workloads=["c,a"], rules=["sgd-momentum", "ADAM", "amsgrad"])
    assert chosen.workloads == ("A", "C")
    assert chosen.rules == ("Adam", "AMSGrad", "SGD-momentum")


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"workloads": ["A", "D"]}, ValueError, "--workloads: unknown name 'D'"),
        ({"rules": ["Adam", "Lion"]}, ValueError, "--rules: unknown name 'Lion'"),
        ({"rules": [","]}, ValueError, "--rules: unknown name ''"),
        ({"steps": 0}, ValueError, "--steps must be at least 1, got 0"),
        ({"steps": 2.5}, TypeError, "--steps must be an integer, got 2.5"),
        ({"warmup": 0}, ValueError, "--warmup must be at least 1, got 0"),
        ({"threads": -2}, ValueError, "--threads must be at least 1, got -2"),
        ({"scale": 0.0}, ValueError, "--scale must be a finite number > 0, got 0.0"),
        ({"scale": math.nan}, ValueError, "--scale must be a finite number > 0, got nan"),
        ({"scale": "2"}, TypeError, "--scale must be a number, got '2'"),
        ({"quick": 1}, TypeError, "--quick must be True or False, got 1"),
        ({"out": ""}, ValueError, "--out must be a directory path"),
    ],
)
def test_bad_options_raise_naming_option_and_value(options, error, message):
    with pytest.raises(error) as raised:
        settings.resolve(**options)
    assert message in str(raised.value)


def _parse(words):
    parser = bench.add_arguments(argparse.ArgumentParser())
    return parser.parse_args(words)


@pytest.mark.parametrize(
    "words",
    [
        [],
        ["--quick"],
        ["--workloads", "B", "--rules", "adamw", "rmsprop", "--steps", "12", "--warmup", "4"],
        ["--threads", "1", "--scale", "0.25", "--out", "some dir/with space"],
    ],
)
def test_the_recorded_command_reproduces_the_settings(words):
    args = _parse(words)
    chosen = settings.resolve(**{k: getattr(args, k) for k in vars(args)})
    command = shlex.split(chosen.command())
    assert command[:2] == ["adamkit", "bench"]
    again = _parse(command[2:])
    assert settings.resolve(**vars(again)) == chosen
