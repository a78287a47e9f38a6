"""``adamkit compare`` run in-process on tiny configurations."""

import io
import json
import math
import struct

import pytest

pytest.importorskip("torch")
pytest.importorskip("rich")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import matplotlib.image
import torch
from rich.console import Console
from sklearn.datasets import load_digits

from adamkit.cli import compare, plot, tasks
from adamkit.cli.main import build_parser, load_subcommands, main

TINY = ["--epochs", "1", "--optimizers", "adam,sgd", "--seed", "3"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def parse(argv):
    return build_parser(load_subcommands()).parse_args(["compare", *argv])


def results(out):
    return json.loads((out / compare.JSON_FILE).read_text())


def body_rows(text):
    """The body rows of the rich table: lines between light bars (the header has heavy ones)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│ ").split("│")])
    return rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One epoch of Adam and SGD with seed 3, its console output captured at a fixed width."""
    out = tmp_path_factory.mktemp("tiny")
    buffer = io.StringIO()
    threads_before = torch.get_num_threads()
    status = compare.run(parse([*TINY, "--out", str(out)]), console=Console(file=buffer, width=120))
    return {
        "status": status,
        "out": out,
        "text": buffer.getvalue(),
        "data": results(out),
        "threads_restored": torch.get_num_threads() == threads_before,
    }


def test_exit_status_is_zero_and_torch_threads_are_restored(tiny):
    assert tiny["status"] == 0
    assert tiny["threads_restored"]


def test_png_is_a_valid_png_of_the_figure_size(tiny):
    path = tiny["out"] / compare.PLOT_FILE
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE
    assert header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    expected = (round(plot.FIGURE_INCHES[0] * plot.DPI), round(plot.FIGURE_INCHES[1] * plot.DPI))
    assert (width, height) == expected
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    # Something was drawn: the image is not a single flat colour.
    assert pixels.std() > 0.01


def test_json_holds_every_optimizer_with_curves_and_config(tiny):
    data = tiny["data"]
    assert set(data["results"]) == {"adam", "sgd"}
    assert data["config"]["epochs"] == 1 and data["config"]["seed"] == 3
    train_samples = data["config"]["train_samples"]
    assert train_samples + data["config"]["test_samples"] == len(load_digits().target)
    batches = math.ceil(train_samples / data["config"]["batch_size"])
    for result in data["results"].values():
        assert len(result["train_loss"]) == 2  # before training and after the one epoch
        assert len(result["test_accuracy"]) == 2
        assert len(result["batch_loss"]) == batches
        assert result["final_train_loss"] == result["train_loss"][-1]
        assert result["final_test_accuracy"] == result["test_accuracy"][-1]
        assert all(math.isfinite(x) and x > 0 for x in result["train_loss"] + result["batch_loss"])
        assert all(0 <= x <= 1 for x in result["test_accuracy"])
        assert result["train_seconds"] > 0


def test_every_optimizer_starts_from_the_same_weights(tiny):
    initial = [result["train_loss"][0] for result in tiny["data"]["results"].values()]
    assert initial[0] == initial[1]
    # An untrained 10-class classifier has a cross-entropy near ln 10.
    assert abs(initial[0] - math.log(10)) < 0.3
    first_batch = [result["batch_loss"][0] for result in tiny["data"]["results"].values()]
    assert first_batch[0] == first_batch[1]


def test_json_records_the_hyperparameters_actually_used(tiny):
    adam = tiny["data"]["results"]["adam"]
    sgd = tiny["data"]["results"]["sgd"]
    assert adam["optimizer"] == "Adam" and sgd["optimizer"] == "SGD"
    assert adam["hyperparameters"]["lr"] == compare.OPTIMIZERS["adam"].hyperparameters["lr"]
    assert adam["hyperparameters"]["betas"] == [0.9, 0.999]
    assert sgd["hyperparameters"]["momentum"] == 0.9
    assert sgd["hyperparameters"]["nesterov"] is True


def test_state_bytes_count_every_state_tensor(tiny):
    features = load_digits().data.shape[1]
    classes = len(set(load_digits().target))
    hidden = tasks.HIDDEN_UNITS
    parameters = (features + 1) * hidden + (hidden + 1) * classes
    float32 = 4
    tensors = 4  # two weights and two biases, each with a float32 `step`
    results_ = tiny["data"]["results"]
    assert results_["adam"]["state_bytes"] == 2 * parameters * float32 + tensors * float32
    assert results_["sgd"]["state_bytes"] == parameters * float32


def test_printed_table_matches_the_json(tiny):
    rows = body_rows(tiny["text"])
    data = tiny["data"]["results"]
    by_class = {result["optimizer"]: result for result in data.values()}
    assert [row[0] for row in rows] == ["Adam", "SGD"]
    for optimizer, lr, loss, accuracy, seconds, state in rows:
        result = by_class[optimizer]
        assert float(lr) == pytest.approx(result["hyperparameters"]["lr"], rel=1e-5)
        assert float(loss) == pytest.approx(result["final_train_loss"], rel=1e-3)
        assert float(accuracy) == pytest.approx(result["final_test_accuracy"], abs=5e-5)
        assert float(seconds) == pytest.approx(result["train_seconds"], abs=5e-3 + 1e-9)
        assert int(state.replace(",", "")) == result["state_bytes"]


def test_output_says_where_the_files_are(tiny):
    assert str(tiny["out"] / compare.PLOT_FILE) in tiny["text"].replace("\n", "")
    assert str(tiny["out"] / compare.JSON_FILE) in tiny["text"].replace("\n", "")


def test_lr_option_changes_the_lr_used(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    status = main(["compare", "--epochs", "1", "--optimizers", "adam", "--seed", "3",
                   "--lr", "ADAM=0.0123", "--out", str(tmp_path)])
    assert status == 0
    adam = results(tmp_path)["results"]["adam"]
    default = tiny["data"]["results"]["adam"]
    assert adam["hyperparameters"]["lr"] == 0.0123
    # Same weights and same first minibatch, so the loss before the first step agrees,
    # and every later loss differs because the steps were taken with the other lr.
    assert adam["batch_loss"][0] == default["batch_loss"][0]
    assert all(a != b for a, b in zip(adam["batch_loss"][1:], default["batch_loss"][1:]))
    [row] = body_rows(capsys.readouterr().out)
    assert row[:2] == ["Adam", "0.0123"]
    assert float(row[2]) == pytest.approx(adam["final_train_loss"], rel=1e-3)


def test_same_seed_gives_the_same_numbers_and_quiet_prints_nothing(tiny, tmp_path, capsys):
    assert main(["compare", *TINY, "--out", str(tmp_path), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    again = results(tmp_path)["results"]
    for name, first in tiny["data"]["results"].items():
        for key in ("train_loss", "test_accuracy", "batch_loss", "state_bytes", "hyperparameters"):
            assert again[name][key] == first[key]
    assert (tmp_path / compare.PLOT_FILE).read_bytes()[:8] == PNG_SIGNATURE


def test_training_reduces_the_loss_and_adam_learns_digits(tmp_path):
    assert main(["compare", "--epochs", "4", "--optimizers", "adam", "--out", str(tmp_path),
                 "--quiet"]) == 0
    adam = results(tmp_path)["results"]["adam"]
    assert adam["final_train_loss"] < 0.5 * adam["train_loss"][0]
    assert adam["final_test_accuracy"] > 0.9


def test_every_optimizer_reduces_the_loss(tmp_path):
    assert main(["compare", "--epochs", "2", "--out", str(tmp_path), "--quiet"]) == 0
    data = results(tmp_path)["results"]
    assert list(data) == list(compare.OPTIMIZERS)
    for name, result in data.items():
        assert result["final_train_loss"] < result["train_loss"][0], name
        assert result["hyperparameters"]["lr"] == compare.OPTIMIZERS[name].hyperparameters["lr"]


@pytest.mark.parametrize(
    "spec, says",
    [
        ("adam", "expected NAME=LR"),
        ("adam=fast", "is not a number"),
        ("adam=-1e-3", "finite number > 0"),
        ("adam=0", "finite number > 0"),
        ("adam=inf", "finite number > 0"),
        ("adam=nan", "finite number > 0"),
        ("adamm=1e-3", "unknown optimizer 'adamm'"),
    ],
)
def test_bad_lr_spec_exits_2_with_a_clear_message(spec, says, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--lr", spec, "--out", str(out)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "argument --lr" in error and says in error and repr(spec) in error
    assert not out.exists()


@pytest.mark.parametrize(
    "optimizers, says",
    [
        ("adam,lamb", "unknown optimizer 'lamb'"),
        ("adam,,sgd", "unknown optimizer ''"),
        ("adam,sgd,adam", "adam is listed twice"),
    ],
)
def test_bad_optimizer_list_exits_2_with_a_clear_message(optimizers, says, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--optimizers", optimizers, "--out", str(out)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "argument --optimizers" in error and says in error
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--optimizers", "adam", "--lr", "sgd=0.1"], "'sgd', which is not in --optimizers adam"),
        (["--optimizers", "adam", "--lr", "adam=0.1", "--lr", "adam=1"], "given twice for 'adam'"),
    ],
)
def test_lr_for_an_optimizer_not_run_exits_2_and_writes_nothing(argv, says, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["compare", *argv, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("adamkit compare: error: --lr") and says in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_an_out_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["compare", "--optimizers", "adam", "--out", str(blocker / "runs")]) == 2
    assert "cannot write to --out" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--epochs", "two"], ["--seed", "-1"],
                                  ["--seed", str(2**32)]])
def test_bad_epochs_or_seed_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", *argv])
    assert exit_.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_help_lists_each_optimizer_with_its_default_lr(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name, choice in compare.OPTIMIZERS.items():
        assert f"{name} " in text and f"lr={choice.hyperparameters['lr']:g}" in text
