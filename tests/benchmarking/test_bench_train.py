"""``adamkit bench --train --quick`` end to end through the ``adamkit`` command: the record's
structure, bytes per parameter against what fp32 AdamW must hold, the reports showing the JSON's
numbers, bad options; and the live-gradient measurement on its own. Timings are not asserted."""

import io
import json
import math
import sys

import pytest
import torch

from adamkit.benchmarking import gpt, train, train_report
from adamkit.benchmarking.train_memory import LiveGradients
from adamkit.cli.main import main

STEPS = 2
CONFIGS = ("torch-fp32-fused", "adamkit-fp32")


def _bench(words, out, capsys):
    """Run ``adamkit bench`` in this process (its workers are processes of their own); return
    its exit status and what it printed."""
    status = main(["bench", *words, "--out", str(out)])
    return status, capsys.readouterr()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-train")
    words = ["--train", "--quick", "--configs", *CONFIGS, "--steps", str(STEPS), "--seeds", "1", "--threads", "1"]
    with pytest.MonkeyPatch.context() as patch:
        printed = io.StringIO()
        patch.setattr(sys, "stdout", printed)
        assert main(["bench", *words, "--out", str(out)]) == 0
    record = json.loads((out / "bench.json").read_text())
    return record, (out / "bench.md").read_text(), printed.getvalue(), out


def test_every_configuration_trained_every_step(run):
    record, _, _, _ = run
    assert record["settings"]["configs"] == list(CONFIGS) and record["notes"] == []
    assert [row["config"] for row in record["results"]] == list(CONFIGS)
    for row in record["results"]:
        assert row["error"] is None
        (only,) = row["runs"]
        assert only["seed"] == 0 and len(only["times_s"]) == len(only["losses"]) == STEPS
        assert row["time"]["times_s"] == only["times_s"][record["settings"]["warmup"] :]
        # Two steps leave the loss near an untrained model's, ln 256 (uniform over bytes).
        assert all(abs(loss - math.log(256)) < 0.5 for loss in only["losses"])
        assert math.isfinite(row["final_loss"]) and row["final_loss"] == only["final_loss"]
        assert 0 < row["baseline_rss_bytes"] < row["peak_rss_bytes"]


def test_fp32_adamw_holds_16_bytes_per_parameter_with_its_gradients(run):
    """4 B of parameter, 4 of gradient (all alive after backward), 8 of moments, and a float32
    ``step`` per tensor: exactly what the tensors must hold, counted from the tensors."""
    record, _, _, _ = run
    count = gpt.QUICK.parameter_count()
    tensors = len(list(gpt.GPT(gpt.QUICK).parameters()))
    for row in record["results"]:
        assert (row["parameters"], row["parameter_tensors"]) == (count, tensors)
        per_param = row["bytes_per_param"]
        assert per_param["parameters"] == 4 and per_param["gradients_peak_live"] == 4
        assert row["state_bytes_per_param_by_key"] == {"exp_avg": 4, "exp_avg_sq": 4, "step": 4 * tensors / count}
        assert per_param["total"] * count == pytest.approx(16 * count + 4 * tensors, abs=1e-6)
        assert per_param["persistent"] * count == pytest.approx(12 * count + 4 * tensors, abs=1e-6)
        assert row["peak_live_gradient_fraction"] == 1
        assert row["targets_met"]["no_full_gradient_set"] is False


def test_ratios_follow_from_the_baseline(run):
    record, _, _, _ = run
    baseline, other = record["results"]
    assert baseline["vs_baseline"]["time_vs_baseline"] == 1 and baseline["vs_baseline"]["loss_vs_baseline"] == 0
    versus = other["vs_baseline"]
    assert math.isclose(versus["time_vs_baseline"], other["time"]["median_ms"] / baseline["time"]["median_ms"])
    assert math.isclose(versus["rss_vs_baseline"], other["peak_rss_bytes"] / baseline["peak_rss_bytes"])
    assert math.isclose(versus["loss_vs_baseline"], other["final_loss"] / baseline["final_loss"] - 1)
    for name, value in versus.items():
        assert other["targets_met"][name] == (abs(value) <= train.TARGETS[name])


def _markdown_rows(text):
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def _printed_rows(text):
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def test_markdown_printed_and_rerendered_tables_show_the_json_numbers(run, capsys):
    record, markdown, printed, out = run
    header, *cells = _markdown_rows(markdown)
    assert header == train_report.headers()
    assert [row[0] for row in cells] == list(CONFIGS)
    assert cells == train_report.rows(record) == _printed_rows(printed)
    assert cells[1][2:6] == ["4.00", "4.00", "8.00", "12.0"]
    command = (
        f"adamkit bench --train --configs {' '.join(CONFIGS)} --steps {STEPS} --warmup 1 --seeds 1 "
        f"--threads 1 --quick --out {out}"
    )
    assert record["command"] == command and markdown.splitlines()[3] == command
    assert main(["bench", "--report-from", str(out / "bench.json")]) == 0
    assert capsys.readouterr().out == markdown


@pytest.mark.parametrize(
    "words, message",
    [
        (["--train", "--configs", "sgd"], "--configs: unknown configuration 'sgd'"),
        (["--train", "--sparse"], "--sparse and --train are different runs"),
        (["--train", "--rules", "Adam"], "--rules is not an option of --train"),
        (["--train", "--steps", "3", "--warmup", "3"], "--warmup must be at least 1 and below --steps (3), got 3"),
        (["--seeds", "2"], "--seeds is an option of --train only"),
        (["--train", "--seeds", "0"], "--seeds must be at least 1, got 0"),
    ],
)
def test_bad_options_exit_with_status_2_and_a_message(words, message, tmp_path, capsys):
    out = tmp_path / "never"
    status, printed = _bench(words, out, capsys)
    assert status == 2
    assert message in printed.err
    assert not out.exists()


def test_live_gradients_sees_each_gradient_before_a_hook_after_it_frees_it():
    """A hook registered after the measurement's frees every gradient, as stepping in backward
    does: the peak is then below a full set; without it, it is the full set."""
    torch.manual_seed(0)
    model = gpt.GPT(gpt.QUICK)
    params = list(model.parameters())
    inputs = torch.randint(0, gpt.VOCABULARY, (2, gpt.QUICK.context))
    full = sum(param.numel() * 4 for param in params)
    largest = max(param.numel() * 4 for param in params)
    for frees in (True, False):
        live = LiveGradients(params)
        handles = [param.register_post_accumulate_grad_hook(_free) for param in params] if frees else []
        gpt.loss(model, inputs, inputs).backward()
        live.measure()
        live.detach()
        for handle in handles:
            handle.remove()
        assert live.peak_bytes == (largest if frees else full)
        model.zero_grad()


def _free(param):
    param.grad = None
