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
        ({"rules": ["Adam", "AdamWScheduleFree"]}, ValueError, "--rules: unknown name 'AdamWScheduleFree'"),
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
        ["--sparse"],
        ["--sparse", "--quick", "--threads", "2"],
        ["--sparse", "--rows", "300", "--dim", "7", "--fraction", "0.25", "--lookups-per-row", "3", "--steps", "11"],
    ],
)
def test_the_recorded_command_reproduces_the_settings(words):
    chosen = bench.resolve_settings(_parse(words))
    command = shlex.split(chosen.command())
    assert command[:2] == ["adamkit", "bench"]
    assert bench.resolve_settings(_parse(command[2:])) == chosen


def test_sparse_defaults_are_the_issues_table_and_quick_shrinks_them():
    chosen = settings.resolve_sparse()
    assert (chosen.rows, chosen.dim, chosen.fraction, chosen.touched) == (1_000_000, 64, 0.01, 10_000)
    assert chosen.lookups_per_row == 2 and chosen.steps >= 10 and chosen.warmup >= 1
    quick = settings.resolve_sparse(quick=True)
    assert quick.rows * quick.dim < chosen.rows * chosen.dim and quick.steps < chosen.steps
    assert settings.resolve_sparse(rows=7, fraction=0.01).touched == 1  # at least one row


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"rows": 0}, ValueError, "--rows must be at least 1, got 0"),
        ({"dim": 2.0}, TypeError, "--dim must be an integer, got 2.0"),
        ({"fraction": 0.0}, ValueError, "--fraction must be in (0, 1], got 0.0"),
        ({"fraction": 1.5}, ValueError, "--fraction must be in (0, 1], got 1.5"),
        ({"fraction": math.nan}, ValueError, "--fraction must be in (0, 1], got nan"),
        ({"fraction": "0.1"}, TypeError, "--fraction must be a number, got '0.1'"),
        ({"lookups_per_row": 0}, ValueError, "--lookups-per-row must be at least 1, got 0"),
        ({"steps": 0}, ValueError, "--steps must be at least 1, got 0"),
    ],
)
def test_bad_sparse_options_raise_naming_option_and_value(options, error, message):
    with pytest.raises(error) as raised:
        settings.resolve_sparse(**options)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "words, message",
    [
        (["--sparse", "--workloads", "A"], "--workloads is not an option of --sparse"),
        (["--sparse", "--scale", "2"], "--scale is not an option of --sparse"),
        (["--rows", "10"], "--rows is an option of --sparse only"),
        (["--lookups-per-row", "3"], "--lookups-per-row is an option of --sparse only"),
    ],
)
def test_options_of_the_other_kind_of_run_are_refused(words, message):
    with pytest.raises(ValueError, match=message):
        bench.resolve_settings(_parse(words))
