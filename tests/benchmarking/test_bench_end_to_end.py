"""``adamkit bench --quick`` end to end: JSON, Markdown and the printed table agree.

The run is a subprocess, so that ``--threads 1`` (which keeps a busy 2-core machine from
stalling torch's thread pool) does not leak into other tests.
"""

import argparse
import json
import math
import statistics
import subprocess
import sys

import pytest
import torch

from adamkit.benchmarking import report, rule_cases, traffic, workloads
from adamkit.cli import bench

STEPS = 4
MISSING = "—"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    options = ["--quick", "--steps", str(STEPS), "--warmup", "1", "--threads", "1", "--out", str(out)]
    completed = subprocess.run(
        [sys.executable, "-m", "adamkit.cli.bench", *options], capture_output=True, text=True, timeout=300
    )

    def refuse(constant):
        raise ValueError(f"the JSON holds {constant}, which is not valid JSON")

    assert completed.returncode == 0, completed.stderr
    record = json.loads((out / "bench.json").read_text(), parse_constant=refuse)
    return completed.returncode, record, (out / "bench.md").read_text(), completed.stdout, out


def _markdown_table(text):
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return header, [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def _printed_rows(text):
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def _expected_cells(row, labels, eight_bit):
    def cell(value, suffix=""):
        return MISSING if value is None else report.figure(value) + suffix

    times = [cell(row["contenders"][label]["median_ms"]) if label in row["contenders"] else MISSING for label in labels]
    return [
        row["workload"],
        row["rule"],
        *times,
        cell(row["speedup_vs_torch_best"], "×"),
        cell(row["adamkit_pct_of_bound"], "%"),
        cell(row["numpy_speedup_vs_plain"], "×"),
        cell(row["int8_time_vs_torch_fused"], "×"),
        *(cell(row["int8_speedup_vs"].get(label), "×") for label in eight_bit),
        cell(row["bound_ms"]),
        cell(row["bound_gb_per_s"]),
    ]


def test_it_succeeds_and_covers_every_workload_and_rule(run):
    status, record, _, _, _ = run
    assert status == 0
    assert record["settings"]["threads"]["torch"] == 1
    pairs = [(row["workload"], row["rule"]) for row in record["results"]]
    assert pairs == [(w, r) for w in workloads.NAMES for r in rule_cases.NAMES]
    for row in record["results"]:
        quick = workloads.QUICK[row["workload"]]
        assert (row["n_params"], row["n_tensors"]) == (quick.n_params, quick.n_tensors)
        assert row["bytes_per_param"] == traffic.bytes_per_param(row["rule"], shapes=quick.shapes)
        in_torch = hasattr(torch.optim, next(c.optimizer for c in rule_cases.CASES if c.name == row["rule"]))
        torchs = {"torch for-loop", "torch foreach"} if in_torch else set()
        assert {"adamkit.torch", *torchs} <= set(row["contenders"])
        if row["rule"] in ("Adam", "AdamW", "AMSGrad"):
            assert "adamkit.torch int8" in row["contenders"]


def test_every_median_is_over_the_requested_steps(run):
    _, record, _, _, _ = run
    for row in record["results"]:
        for label, entry in row["contenders"].items():
            assert len(entry["times_s"]) == STEPS, label
            assert math.isclose(entry["median_ms"], 1e3 * statistics.median(entry["times_s"]))
            assert entry["min_ms"] <= entry["median_ms"] <= entry["max_ms"]
        for probe in row["bandwidth"].values():
            assert len(probe["times_s"]) == STEPS
            assert math.isclose(probe["gb_per_s"], probe["bytes_moved"] / statistics.median(probe["times_s"]) / 1e9)


def test_derived_figures_follow_from_the_raw_timings(run):
    _, record, _, _, _ = run
    for row in record["results"]:
        medians = {label: statistics.median(entry["times_s"]) for label, entry in row["contenders"].items()}
        bandwidth = max(p["bytes_moved"] / statistics.median(p["times_s"]) for p in row["bandwidth"].values())
        bound = row["bytes_per_param"] * row["n_params"] / bandwidth
        assert math.isclose(row["bound_ms"], 1e3 * bound)
        assert math.isclose(row["adamkit_pct_of_bound"], 100 * bound / medians["adamkit.torch"])
        torch_times = [medians[label] for label in medians if label.startswith("torch ")]
        if not torch_times:  # a rule torch.optim lacks (AdEMAMix)
            assert row["torch_best"] is None and row["speedup_vs_torch_best"] is None
            continue
        torch_best = min(torch_times)
        assert math.isclose(row["speedup_vs_torch_best"], torch_best / medians["adamkit.torch"])
        assert row["contenders"][row["torch_best"]]["median_ms"] == pytest.approx(1e3 * torch_best)
        if "plain NumPy" in medians and "adamkit.numpy" in medians:
            assert math.isclose(row["numpy_speedup_vs_plain"], medians["plain NumPy"] / medians["adamkit.numpy"])
        else:
            assert row["numpy_speedup_vs_plain"] is None
        if "adamkit.torch int8" in medians and "torch fused" in medians:
            assert math.isclose(row["int8_time_vs_torch_fused"], medians["adamkit.torch int8"] / medians["torch fused"])
        else:
            assert row["int8_time_vs_torch_fused"] is None
        for label, speedup in row["int8_speedup_vs"].items():
            assert math.isclose(speedup, medians[label] / medians["adamkit.torch int8"])


def test_markdown_and_printed_table_show_the_json_numbers(run):
    _, record, markdown, printed, _ = run
    header, markdown_rows = _markdown_table(markdown)
    labels = [name.removesuffix(" ms") for name in header[2:] if name.endswith(" ms") and name != "bound ms"]
    assert labels[:1] == ["adamkit.torch"] and "torch fused" in labels and "plain NumPy" in labels
    eight_bit = [name.removesuffix(" / adamkit int8") for name in header if name.endswith(" / adamkit int8")]
    assert eight_bit == report.eight_bit_columns(record)
    expected = [_expected_cells(row, labels, eight_bit) for row in record["results"]]
    assert markdown_rows == expected
    assert _printed_rows(printed) == expected


def test_markdown_header_holds_the_exact_command_and_the_machine(run):
    _, record, markdown, printed, out = run
    command = f"adamkit bench --workloads A B C --rules {' '.join(rule_cases.NAMES)} --steps {STEPS} --warmup 1 --threads 1 --quick --out {out}"
    assert record["command"] == command
    assert markdown.splitlines()[:5] == ["# adamkit bench", "", "```", command, "```"]
    assert record["machine"]["cpu_model"] in markdown
    assert command in printed.replace("\n", "")


def test_missing_paths_are_explained_in_notes(run):
    _, record, markdown, printed, _ = run
    for row in record["results"]:
        if row["rule"] in ("Adamax", "Adadelta", "RMSprop", "RAdam", "NAdam"):
            assert "torch fused" not in row["contenders"]
            assert f"torch fused not timed: torch.optim.{row['optimizer']} has no fused path" in row["notes"]
    assert "has no fused path" in markdown and "has no fused path" in printed


def test_bad_options_exit_with_status_2_and_a_message(tmp_path, capsys):
    parser = bench.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--quick", "--rules", "AdamWScheduleFree", "--out", str(tmp_path / "never")])
    assert bench.run(args) == 2
    assert "--rules: unknown name 'AdamWScheduleFree'" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
