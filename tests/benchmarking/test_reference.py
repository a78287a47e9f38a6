"""``adamkit bench --reference`` and ``--report-from``: the run BENCHMARKS.md's tables come
from, end to end on tiny sizes, and the splice between the markers.

Timings are not asserted, only that they are what the figures are derived from.
"""

import json
import math
import subprocess
import sys

import pytest
import torch

from adamkit import specs
from adamkit.benchmarking import contenders, distributed, quality, reference_report, settings
from adamkit.compact import policy

PAGE = f"# A page\n\nBefore.\n\n{reference_report.BEGIN}\nold tables\n{reference_report.END}\n\nAfter.\n"


def _bench(*words, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "adamkit.cli.main", "bench", *words], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-reference")
    page = out / "PAGE.md"
    page.write_text(PAGE)
    completed = _bench(
        "--reference", "--quick", "--steps", "2", "--warmup", "1", "--threads", "1", "--out", str(out),
        "--update", str(page), timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads((out / "bench.json").read_text()), out, page, completed.stdout


def test_the_run_holds_every_part(run):
    record, out, _, _ = run
    assert record["kind"] == "reference"
    assert record["command"] == f"adamkit bench --reference --steps 2 --warmup 1 --threads 1 --quick --out {out}"
    parts = record["results"]
    assert [row["workload"] for row in parts["dense"]["results"]] == ["A"] * len(parts["dense"]["results"])
    assert parts["sparse"]["settings"]["steps"] == 2 and len(parts["sparse"]["results"]) == 2
    assert {row["task"] for row in parts["quality"]["results"]} == {"mlp"}
    assert parts["distributed"]["settings"]["world_size"] == distributed.WORLD_SIZE == 2


def test_compact_state_is_timed_and_its_ratios_follow_from_the_medians(run):
    record, _, _, _ = run
    for row in record["results"]["dense"]["results"]:
        medians = {label: entry["median_ms"] for label, entry in row["contenders"].items()}
        if row["rule"] in ("Adam", "AdamW", "AMSGrad", "Adamax", "Adadelta", "RAdam", "NAdam"):
            assert set(contenders.COMPACT_STATE) <= set(medians), row["rule"]
        for label, ratio in row["compact_time_vs_torch_best"].items():
            if row["torch_best"] is None:  # a rule torch.optim lacks (AdEMAMix)
                assert ratio is None
                continue
            assert math.isclose(ratio, medians[label] / medians[row["torch_best"]])


def test_the_quick_run_trains_the_first_optimizer_at_its_share_of_compares_learning_rate(run):
    record, _, _, _ = run
    [row] = record["results"]["quality"]["results"]
    assert row["optimizer"] == quality.FIRST == "adam" and row["epochs"] == 1
    assert list(row["losses"]) == list(quality.STATES)
    assert row["lr"] == specs.COMPARED["adam"][1].compare_lrs["mlp"] * quality.LR_FRACTION


def test_quality_gaps_follow_from_the_losses(run):
    record, _, _, _ = run
    for row in record["results"]["quality"]["results"]:
        losses = row["losses"]
        assert all(len(values) == 1 for values in losses.values())
        base = losses[quality.BASELINE][0]
        assert 0 < base < math.log(10)  # below the cross-entropy of a uniform guess over 10 digits
        for name in losses:
            if name != quality.BASELINE:
                assert math.isclose(row["gap_of_mean"][name], losses[name][0] / base - 1)
                assert row["largest_seed_gap"][name] == row["gap_of_mean"][name]


def test_distributed_times_each_wrapper_and_rule_with_the_contenders_that_apply(run):
    record, _, _, _ = run
    rows = record["results"]["distributed"]["results"]
    rules = settings.DISTRIBUTED_QUICK_RULES
    assert [(row["wrapper"], row["rule"]) for row in rows] == [(w, r) for w in distributed.WRAPPERS for r in rules]
    for row in rows:
        entries = row["contenders"]
        spec = specs.BY_NAME[row["optimizer"]]
        expected = {contenders.ADAMKIT_TORCH}
        if hasattr(torch.optim, row["optimizer"]):
            expected |= {"torch for-loop", "torch foreach"}
        if policy.takes_compact_state(spec, "int8"):
            expected.add(contenders.ADAMKIT_INT8)
        assert set(entries) <= expected, row["rule"]
        for label in expected - set(entries):  # refused the wrapper's parameters: a note says so
            assert any(note.startswith(f"{label} not timed under {row['wrapper']}: ") for note in row["notes"])
        if row["rule"] == "Adafactor" and row["wrapper"] == "FSDP2":
            # torch's Adafactor cannot step DTensor shards (an in-place op on a partial norm);
            # adamkit's sums its factors over the processes.
            expected = {contenders.ADAMKIT_TORCH}
        assert set(entries) == expected, row["rule"]
        for entry in entries.values():
            assert len(entry["times_s"]) == 2 and math.isclose(entry["median_ms"], 1e3 * sum(entry["times_s"]) / 2)
        torch_paths = [entries[label]["median_ms"] for label in ("torch for-loop", "torch foreach") if label in entries]
        adamkit_ms = entries[contenders.ADAMKIT_TORCH]["median_ms"]
        assert row["speedup_vs_torch_best"] == (min(torch_paths) / adamkit_ms if torch_paths else None)


def test_zero_and_fsdp2_split_the_state_that_ddp_keeps_whole_on_each_rank(run):
    record, _, _, _ = run
    rows = {(row["wrapper"], row["rule"]): row["contenders"] for row in record["results"]["distributed"]["results"]}
    for label in (contenders.ADAMKIT_TORCH, "torch for-loop"):
        whole = rows["DDP", "Adam"][label]["state_bytes_per_rank"]
        zero = rows["ZeRO", "Adam"][label]["state_bytes_per_rank"]
        fsdp = rows["FSDP2", "Adam"][label]["state_bytes_per_rank"]
        assert whole[0] == whole[1] > 0
        assert sum(zero) == whole[0] and 0 < min(zero)  # each parameter's state on one rank
        # FSDP2 shards each tensor's moments by rows; the per-tensor step counts are on every rank.
        steps = 4 * 2 * settings.DISTRIBUTED_QUICK["depth"]
        assert max(fsdp) < whole[0] and sum(fsdp) - whole[0] <= steps * 2


def test_the_page_and_bench_md_hold_the_rendered_tables(run):
    record, out, page, printed = run
    block = reference_report.block(record)
    text = page.read_text()
    assert text == PAGE.replace("old tables\n", block)
    assert (out / "bench.md").read_text() == reference_report.markdown(record)
    assert record["command"] in block and "| Rule | adamkit.torch ms |" in block
    words = " ".join(printed.split())
    assert all(table.title in words for table in reference_report.tables(record))


def test_report_from_re_renders_and_splices_without_running(run, tmp_path):
    record, out, _, _ = run
    printed = _bench("--report-from", str(out / "bench.json"))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == reference_report.markdown(record)
    page = tmp_path / "PAGE.md"
    page.write_text(PAGE)
    spliced = _bench("--report-from", str(out / "bench.json"), "--update", str(page))
    assert spliced.returncode == 0, spliced.stderr
    assert reference_report.generated(page.read_text()) == reference_report.block(record)
    assert not (tmp_path / "bench-results").exists()


def test_splicing_twice_changes_nothing_and_keeps_the_rest(run):
    record, _, _, _ = run
    once = reference_report.splice(PAGE, record)
    assert reference_report.splice(once, record) == once
    assert once.startswith("# A page\n\nBefore.\n\n") and once.endswith(f"{reference_report.END}\n\nAfter.\n")


@pytest.mark.parametrize("text", ["no markers", f"{reference_report.END}\n{reference_report.BEGIN}\n"])
def test_a_page_without_markers_in_order_is_refused(text):
    with pytest.raises(ValueError, match="the text must hold the line '<!-- BEGIN"):
        reference_report.splice(text, {})
    with pytest.raises(ValueError, match="the text must hold the line '<!-- BEGIN"):
        reference_report.generated(text)


@pytest.mark.parametrize(
    "words, message",
    [
        (["--reference", "--rows", "5"], "--rows is not an option of --reference"),
        (["--reference", "--rules", "Adam"], "--rules is not an option of --reference"),
        (["--reference", "--sparse"], "--sparse and --reference are different runs"),
        (["--reference", "--distributed"], "--distributed and --reference are different runs"),
        (["--distributed", "--threads", "2"], "--threads is not an option of --distributed"),
        (["--distributed", "--rows", "5"], "--rows is not an option of --distributed"),
        (["--distributed", "--rules", "SGD"], "--rules: unknown name 'SGD'"),
        (["--update", "PAGE.md"], "--update is an option of --reference and --report-from only"),
        (["--reference", "--update", "missing.md"], "missing.md"),
        (["--reference", "--update", "plain.md"], "plain.md: the text must hold the line '<!-- BEGIN"),
        (["--report-from", "bench.json", "--update", "plain.md"], "plain.md: the text must hold the line '<!-- BEGIN"),
        (["--report-from", "bench.json", "--steps", "3"], "--steps is not an option of --report-from"),
        (["--report-from", "bench.json", "--quick"], "--quick is not an option of --report-from"),
        (["--report-from", "sparse.json", "--update", "PAGE.md"], "--update needs the record of adamkit bench"),
    ],
)
def test_bad_options_exit_with_status_2_and_a_message_before_running(words, message, tmp_path):
    (tmp_path / "plain.md").write_text("no markers\n")
    (tmp_path / "PAGE.md").write_text(PAGE)
    (tmp_path / "bench.json").write_text(json.dumps({"kind": "reference"}))
    (tmp_path / "sparse.json").write_text(json.dumps({"command": "adamkit bench --sparse", "settings": {"rows": 1}}))
    words = [str(tmp_path / word) if (tmp_path / word).exists() or word == "missing.md" else word for word in words]
    completed = _bench(*words, "--out", str(tmp_path / "never")) if "--report-from" not in words else _bench(*words)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert not (tmp_path / "never").exists()
    assert (tmp_path / "PAGE.md").read_text() == PAGE
