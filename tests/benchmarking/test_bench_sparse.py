"""``adamkit bench --sparse`` on a tiny table, end to end through the ``adamkit`` command:
the JSON's structure, the Markdown and printed tables showing its numbers, and bad options.
Timings are not asserted, only that they are what the figures are derived from."""

import json
import math
import statistics
import subprocess
import sys

import pytest

from adamkit.benchmarking import report, sparse

STEPS = 3
ROWS, DIM, FRACTION = 300, 7, 0.1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-sparse")
    options = ["--rows", str(ROWS), "--dim", str(DIM), "--fraction", str(FRACTION)]
    options += ["--steps", str(STEPS), "--warmup", "1", "--threads", "1", "--out", str(out)]
    completed = subprocess.run(
        [sys.executable, "-m", "adamkit.cli.main", "bench", "--sparse", *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    record = json.loads((out / "bench.json").read_text())
    return record, (out / "bench.md").read_text(), completed.stdout, out


def _markdown_rows(text):
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def _printed_rows(text):
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def test_both_gradients_are_timed_for_every_contender(run):
    record, _, _, _ = run
    assert record["settings"]["touched_rows"] == 30 and record["settings"]["threads"]["torch"] == 1
    rows = {row["gradient"]: row for row in record["results"]}
    assert list(rows) == list(sparse.GRADIENTS)
    assert (rows["coalesced"]["entries_per_step"], rows["coalesced"]["coalesced"]) == (30, True)
    assert (rows["embedding backward"]["entries_per_step"], rows["embedding backward"]["coalesced"]) == (60, False)
    for row in record["results"]:
        assert list(row["contenders"]) == list(sparse.LABELS)
        for label, entry in row["contenders"].items():
            assert len(entry["times_s"]) == STEPS, label
            assert math.isclose(entry["median_ms"], 1e3 * statistics.median(entry["times_s"]))
            assert entry["min_ms"] <= entry["median_ms"] <= entry["max_ms"]


def test_ratios_and_targets_follow_from_the_medians(run):
    record, _, _, _ = run
    for row in record["results"]:
        medians = {label: entry["median_ms"] for label, entry in row["contenders"].items()}
        for name, slower, faster in sparse.RATIOS:
            assert math.isclose(row["ratios"][name], medians[slower] / medians[faster])
        for name, target in sparse.TARGETS.items():
            assert row["targets_met"][name] == (row["ratios"][name] >= target)


def test_lazy_adam_did_the_work_sparse_adam_did(run):
    """The timed lazy Adam (eps_hat) changed rows, and its table and SparseAdam's end the run
    equal up to float32 round-off."""
    record, _, _, _ = run
    rounds = STEPS + 1
    for row in record["results"]:
        assert 30 <= row["lazy_rows_changed"] <= min(ROWS, 30 * rounds)
        assert 0 <= row["lazy_vs_sparse_adam_max_relative_difference"] < 1e-5


def test_markdown_and_printed_table_show_the_json_numbers(run):
    record, markdown, printed, _ = run
    header, *cells = _markdown_rows(markdown)
    assert header == ["Gradient", "entries/step", *(f"{label} ms" for label in sparse.LABELS)] + [
        name for name, _, _ in sparse.RATIOS
    ]
    expected = [
        [
            row["gradient"],
            str(row["entries_per_step"]),
            *(report.figure(row["contenders"][label]["median_ms"]) for label in sparse.LABELS),
            *(report.figure(row["ratios"][name]) + "×" for name, _, _ in sparse.RATIOS),
        ]
        for row in record["results"]
    ]
    assert cells == expected
    assert _printed_rows(printed) == expected


def test_the_reports_hold_the_exact_command_and_the_targets(run):
    record, markdown, printed, out = run
    command = (
        f"adamkit bench --sparse --rows {ROWS} --dim {DIM} --fraction {FRACTION} --lookups-per-row 2 "
        f"--steps {STEPS} --warmup 1 --threads 1 --out {out}"
    )
    assert record["command"] == command
    assert markdown.splitlines()[:5] == ["# adamkit bench --sparse", "", "```", command, "```"]
    assert command in printed.replace("\n", "")
    for text in (markdown, printed):
        words = " ".join(text.split())
        assert "adamkit dense / lazy ≥ 20.0" in words and "SparseAdam / lazy ≥ 1.00" in words


@pytest.mark.parametrize(
    "words, message",
    [
        (["--sparse", "--rules", "Adam"], "--rules is not an option of --sparse"),
        (["--sparse", "--fraction", "2"], "--fraction must be in (0, 1], got 2.0"),
        (["--dim", "8"], "--dim is an option of --sparse only"),
    ],
)
def test_bad_options_exit_with_status_2_and_a_message(words, message, tmp_path):
    out = tmp_path / "never"
    completed = subprocess.run(
        [sys.executable, "-m", "adamkit.cli.main", "bench", *words, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert message in completed.stderr
    assert not out.exists()
