"""``adamkit bench --reference`` and ``--report-from``: the run BENCHMARKS.md's tables come
from, end to end on tiny sizes, and the splice between the markers.

Timings are not asserted, only that they are what the figures are derived from.
"""

import json
import math
import subprocess
import sys

import pytest

from adamkit.benchmarking import contenders, quality, reference_report

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
    assert [row["task"] for row in parts["quality"]["results"]] == ["mlp"]


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


def test_quality_gaps_follow_from_the_losses(run):
    record, _, _, _ = run
    for row in record["results"]["quality"]["results"]:
        losses = row["losses"]
        assert list(losses) == list(quality.STATES) and all(len(values) == 1 for values in losses.values())
        base = losses[quality.BASELINE][0]
        assert 0 < base < math.log(10)  # below the cross-entropy of a uniform guess over 10 digits
        for name in quality.STATES:
            if name != quality.BASELINE:
                assert math.isclose(row["gap_of_mean"][name], losses[name][0] / base - 1)
                assert row["largest_seed_gap"][name] == row["gap_of_mean"][name]


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
