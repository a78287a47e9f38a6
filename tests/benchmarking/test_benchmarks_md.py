"""BENCHMARKS.md's generated tables and the committed JSON they come from change together:
``adamkit bench --report-from benchmarks/results/current/bench.json --update BENCHMARKS.md``
re-renders the tables, and editing either alone fails here."""

import json
from pathlib import Path

from adamkit.benchmarking import quality, reference_report, rule_cases
from adamkit.benchmarking.settings import QUALITY_FULL, QualitySettings

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_JSON = ROOT / "benchmarks" / "results" / "current" / "bench.json"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def test_the_committed_tables_are_what_the_committed_json_renders():
    """BENCHMARKS.md's generated block and benchmarks/results/current/bench.json change together:
    ``adamkit bench --report-from benchmarks/results/current/bench.json --update BENCHMARKS.md``."""
    record = json.loads(COMMITTED_JSON.read_text())
    assert reference_report.generated(BENCHMARKS_MD.read_text()) == reference_report.block(record)


def test_the_committed_json_is_a_full_reference_run():
    record = json.loads(COMMITTED_JSON.read_text())
    assert record["kind"] == "reference" and record["finished"] is not None
    assert record["command"].startswith("adamkit bench --reference ") and "--quick" not in record["command"]
    # Every rule the bench times, once (the rows keep the order of the run that made them).
    assert sorted(row["rule"] for row in record["results"]["dense"]["results"]) == sorted(rule_cases.NAMES)
    full = QualitySettings(**QUALITY_FULL)
    expected = [(task, optimizer) for task in full.tasks for optimizer in full.optimizers_of(task)]
    assert [(row["task"], row["optimizer"]) for row in record["results"]["quality"]["results"]] == expected
    assert {row["optimizer"] for row in record["results"]["quality"]["results"]} == set(quality.OPTIMIZERS)
