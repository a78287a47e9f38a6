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

from adamkit import specs
from adamkit.cli import compare
from adamkit.cli.main import build_parser, load_subcommands, main
from adamkit.compare import comparison, plot, tasks
from adamkit.compare.choices import OPTIMIZERS
from adamkit.compare.records import diagnostic_steps

TINY = ["--task", "logreg", "--epochs", "2", "--optimizers", "adam,sgd", "--seed", "3", "--seeds", "2"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DIGITS = load_digits()
FEATURES, CLASSES = DIGITS.data.shape[1], len(set(DIGITS.target))


def parse(argv):
    return build_parser(load_subcommands()).parse_args(["compare", *argv])


def results(out, task="logreg"):
    return json.loads((out / comparison.json_file(task)).read_text())


def body_rows(text):
    """The body rows of a rich table: the lines between vertical bars."""
    return [[cell.strip() for cell in line.strip("│ ").split("│")]
            for line in text.splitlines() if line.startswith("│")]


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def run_captured(argv, out):
    buffer = io.StringIO()
    status = compare.run(parse([*argv, "--out", str(out)]), console=Console(file=buffer, width=150))
    return status, buffer.getvalue()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two epochs of logreg with Adam and SGD-Nesterov, seeds 3 and 4, with diagnostics."""
    out = tmp_path_factory.mktemp("tiny")
    threads_before = torch.get_num_threads()
    status, text = run_captured([*TINY, "--diagnostics"], out)
    return {
        "status": status,
        "out": out,
        "text": text,
        "data": results(out),
        "threads_restored": torch.get_num_threads() == threads_before,
    }


@pytest.fixture(scope="module")
def tiny_numpy(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_numpy")
    status, text = run_captured([*TINY, "--diagnostics", "--backend", "numpy"], out)
    return {"status": status, "out": out, "text": text, "data": results(out)}


def test_exit_status_is_zero_and_torch_threads_are_restored(tiny):
    assert tiny["status"] == 0
    assert tiny["threads_restored"]


@pytest.mark.parametrize(
    "file, inches",
    [(comparison.plot_file("logreg"), plot.CURVES_INCHES),
     (comparison.diagnostics_file("logreg"), plot.DIAGNOSTICS_INCHES)],
)
def test_pngs_are_valid_pngs_of_the_figure_size(tiny, file, inches):
    path = tiny["out"] / file
    width, height = png_size(path)
    assert (width, height) == (round(inches[0] * plot.DPI), round(inches[1] * plot.DPI))
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.01  # something was drawn


def test_json_holds_every_seed_with_curves_and_config(tiny):
    data = tiny["data"]
    config = data["config"]
    assert set(data["results"]) == {"adam", "sgd"}
    assert config["task"] == "logreg" and config["backend"] == "torch"
    assert config["epochs"] == 2 and config["seeds"] == [3, 4]
    assert config["train_samples"] + config["test_samples"] == len(DIGITS.target)
    batches = math.ceil(config["train_samples"] / config["batch_size"])
    for result in data["results"].values():
        assert [run["seed"] for run in result["seeds"]] == [3, 4]
        for run in result["seeds"]:
            assert len(run["train_loss"]) == len(run["test_accuracy"]) == 3
            assert len(run["batch_loss"]) == 2 * batches
            assert run["final_train_loss"] == run["train_loss"][-1]
            assert run["final_test_accuracy"] == run["test_accuracy"][-1]
            trapezoids = sum((a + b) / 2 for a, b in zip(run["train_loss"], run["train_loss"][1:]))
            assert run["loss_area"] == pytest.approx(trapezoids, rel=1e-12)
            assert all(0 <= x <= 1 for x in run["test_accuracy"])
            assert run["train_seconds"] > 0
        for key in ("final_train_loss", "final_test_accuracy", "loss_area", "train_seconds"):
            mean = sum(run[key] for run in result["seeds"]) / 2
            assert result[key] == pytest.approx(mean, rel=1e-12)


def test_logreg_starts_from_zero_weights_for_every_optimizer_and_seed(tiny):
    for result in tiny["data"]["results"].values():
        for run in result["seeds"]:
            # Zero weights predict 1/10 for every class, and the penalty is zero.
            assert run["train_loss"][0] == pytest.approx(math.log(10), rel=1e-6)
            assert run["batch_loss"][0] == pytest.approx(math.log(10), rel=1e-6)
            assert run["train_loss"][-1] < 0.7 * math.log(10)


def test_seeds_see_different_splits_and_batches(tiny):
    adam = tiny["data"]["results"]["adam"]["seeds"]
    assert adam[0]["batch_loss"][1:] != adam[1]["batch_loss"][1:]


def test_state_bytes_count_every_state_tensor(tiny):
    parameters = FEATURES * CLASSES + CLASSES
    float32 = 4
    results_ = tiny["data"]["results"]
    # Adam: exp_avg and exp_avg_sq of the weight and the bias, and a float32 step each.
    assert results_["adam"]["state_bytes"] == 2 * parameters * float32 + 2 * float32
    # SGD-Nesterov: one momentum buffer, no step count.
    assert results_["sgd"]["state_bytes"] == parameters * float32


def test_printed_table_matches_the_json(tiny):
    rows = body_rows(tiny["text"])
    data = tiny["data"]["results"]
    by_label = {result["label"]: result for result in data.values()}
    assert [row[0] for row in rows] == ["Adam", "SGD-Nesterov"]
    for label, lr, loss, accuracy, area, seconds, state in rows:
        result = by_label[label]
        assert float(lr) == pytest.approx(result["hyperparameters"]["lr"], rel=1e-5)
        assert float(loss) == pytest.approx(result["final_train_loss"], rel=1e-3)
        assert float(accuracy) == pytest.approx(result["final_test_accuracy"], abs=5e-5)
        assert float(area) == pytest.approx(result["loss_area"], rel=1e-3)
        assert float(seconds) == pytest.approx(result["train_seconds"], abs=5e-3 + 1e-9)
        assert int(state.replace(",", "")) == result["state_bytes"]


def test_output_says_where_the_files_are(tiny):
    text = tiny["text"].replace("\n", "")
    for file in (comparison.plot_file("logreg"), comparison.json_file("logreg"), comparison.diagnostics_file("logreg")):
        assert str(tiny["out"] / file) in text


def test_json_records_the_hyperparameters_and_labels(tiny):
    adam, sgd = tiny["data"]["results"]["adam"], tiny["data"]["results"]["sgd"]
    assert (adam["label"], adam["optimizer"]) == ("Adam", "Adam")
    assert (sgd["label"], sgd["optimizer"]) == ("SGD-Nesterov", "SGD")
    assert adam["hyperparameters"]["lr"] == tasks.LEARNING_RATES["adam"]["logreg"]
    assert adam["hyperparameters"]["betas"] == [0.9, 0.999]
    assert sgd["hyperparameters"]["momentum"] == 0.9 and sgd["hyperparameters"]["nesterov"] is True


def test_diagnostics_are_read_at_log_spaced_steps_of_the_first_seed(tiny):
    config = tiny["data"]["config"]
    total = config["epochs"] * math.ceil(config["train_samples"] / config["batch_size"])
    for name, result in tiny["data"]["results"].items():
        first, second = result["seeds"]
        assert [record["step"] for record in first["diagnostics"]] == diagnostic_steps(total)
        assert second["diagnostics"] == []
        for record in first["diagnostics"]:
            [group] = record["groups"]
            assert group["elements"] == FEATURES * CLASSES + CLASSES
            assert group["nonfinite"] == 0.0
            if name == "adam":
                assert group["step"] == record["step"]
                assert group["bias_correction1"] == pytest.approx(1 - 0.9 ** record["step"])
                assert group["bias_correction2"] == pytest.approx(1 - 0.999 ** record["step"])


@pytest.mark.parametrize("fixture", ["tiny", "tiny_numpy"])
def test_the_lr_decays_as_one_over_root_t(fixture, request):
    """SGD's effective step size is its lr, read before the step's schedule update: γ/√t."""
    result = request.getfixturevalue(fixture)["data"]["results"]["sgd"]
    base = result["hyperparameters"]["lr"]
    for record in result["seeds"][0]["diagnostics"]:
        quantiles = record["groups"][0]["step_size"]
        assert quantiles["minimum"] == quantiles["maximum"]
        assert quantiles["median"] == pytest.approx(base / math.sqrt(record["step"]), rel=1e-12)


def test_numpy_backend_matches_the_torch_backend(tiny, tiny_numpy):
    assert tiny_numpy["status"] == 0
    assert tiny_numpy["data"]["config"]["backend"] == "numpy"
    for name, from_torch in tiny["data"]["results"].items():
        from_numpy = tiny_numpy["data"]["results"][name]
        assert from_numpy["state_bytes"] == from_torch["state_bytes"]
        assert from_numpy["hyperparameters"]["lr"] == from_torch["hyperparameters"]["lr"]
        for run_numpy, run_torch in zip(from_numpy["seeds"], from_torch["seeds"]):
            # The same model, batches and schedule; only float32 rounding differs.
            assert run_numpy["train_loss"] == pytest.approx(run_torch["train_loss"], rel=2e-4)
            assert run_numpy["batch_loss"] == pytest.approx(run_torch["batch_loss"], rel=2e-4)
    rows = body_rows(tiny_numpy["text"])
    by_label = {result["label"]: result for result in tiny_numpy["data"]["results"].values()}
    for row in rows:
        assert float(row[2]) == pytest.approx(by_label[row[0]]["final_train_loss"], rel=1e-3)


def test_every_optimizer_reduces_the_logreg_loss(tmp_path):
    assert {choice.class_name for choice in OPTIMIZERS.values()} == {spec.name for spec in specs.ALL}
    assert main(["compare", "--task", "logreg", "--backend", "numpy", "--epochs", "3", "--optimizers", "All",
                 "--out", str(tmp_path), "--quiet"]) == 0
    data = results(tmp_path)["results"]
    assert list(data) == list(OPTIMIZERS)
    for name, result in data.items():
        [run] = result["seeds"]
        assert result["final_train_loss"] < 0.5 * run["train_loss"][0], name
        assert result["final_test_accuracy"] > 0.8, name
        assert result["hyperparameters"]["lr"] == tasks.LEARNING_RATES[name]["logreg"]


@pytest.mark.parametrize("task, optimizers", [("mlp", "adam"), ("cnn", "adamw,adadelta")])
def test_the_networks_train_and_their_state_is_counted(task, optimizers, tmp_path):
    assert main(["compare", "--task", task, "--epochs", "1", "--optimizers", optimizers,
                 "--out", str(tmp_path), "--quiet"]) == 0
    data = results(tmp_path, task)
    assert data["config"]["model"] == tasks.TASKS[task].model
    from adamkit.compare.models import build

    model = build(task, FEATURES, CLASSES, seed=0)
    parameters = sum(p.numel() for p in model.parameters())
    tensors = len(list(model.parameters()))
    for result in data["results"].values():
        [run] = result["seeds"]
        assert run["train_loss"][-1] < run["train_loss"][0]
        # Two float32 moments per parameter and a float32 step per tensor.
        assert result["state_bytes"] == 2 * parameters * 4 + tensors * 4
    assert png_size(tmp_path / comparison.plot_file(task)) == (1200, 500)


def test_task_all_runs_the_three_tasks(tmp_path):
    assert main(["compare", "--task", "all", "--epochs", "1", "--optimizers", "rmsprop",
                 "--out", str(tmp_path), "--quiet"]) == 0
    for task in tasks.TASKS:
        assert results(tmp_path, task)["config"]["task"] == task
        assert (tmp_path / comparison.plot_file(task)).read_bytes()[:8] == PNG_SIGNATURE


def test_lr_option_changes_the_lr_used(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")
    assert main(["compare", *TINY, "--optimizers", "adam", "--lr", "ADAM=0.0123", "--out", str(tmp_path)]) == 0
    [adam, _] = results(tmp_path)["results"]["adam"]["seeds"]
    [default, _] = tiny["data"]["results"]["adam"]["seeds"]
    assert results(tmp_path)["results"]["adam"]["hyperparameters"]["lr"] == 0.0123
    # Same weights and first minibatch: the loss before the first step agrees, later ones differ.
    assert adam["batch_loss"][0] == default["batch_loss"][0]
    assert all(a != b for a, b in zip(adam["batch_loss"][1:], default["batch_loss"][1:]))
    [row] = body_rows(capsys.readouterr().out)
    assert row[:2] == ["Adam", "0.0123"]


def test_same_seed_gives_the_same_numbers_and_quiet_prints_nothing(tiny, tmp_path, capsys):
    assert main(["compare", *TINY, "--out", str(tmp_path), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    again = results(tmp_path)["results"]
    for name, first in tiny["data"]["results"].items():
        assert again[name]["state_bytes"] == first["state_bytes"]
        for run, first_run in zip(again[name]["seeds"], first["seeds"]):
            for key in ("train_loss", "test_accuracy", "batch_loss"):
                assert run[key] == first_run[key]
    assert not (tmp_path / comparison.diagnostics_file("logreg")).exists()


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
        ("adam,lars", "unknown optimizer 'lars'"),
        ("adam,,sgd", "unknown optimizer ''"),
        ("adam,sgd,adam", "adam is listed twice"),
        ("adam,all", "unknown optimizer 'all'"),
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
        (["--optimizers", "adam", "--lr", "sgd=0.1"], "--lr sgd=... names 'sgd', which is not in --optimizers adam"),
        (["--optimizers", "adam", "--lr", "adam=0.1", "--lr", "adam=1"], "--lr is given twice for 'adam'"),
        (["--backend", "numpy"], "--backend numpy runs only --task logreg, not 'mlp'"),
        (["--backend", "numpy", "--task", "all"], "--backend numpy runs only --task logreg, not 'all'"),
        (["--seed", str(2**32 - 1), "--seeds", "2"], "goes past 2**32 - 1"),
    ],
)
def test_inconsistent_options_exit_2_and_write_nothing(argv, says, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["compare", *argv, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("adamkit compare: error: ") and says in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_an_out_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["compare", "--optimizers", "adam", "--out", str(blocker / "runs")]) == 2
    assert "cannot write to --out" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize(
    "argv",
    [["--epochs", "0"], ["--epochs", "two"], ["--seed", "-1"], ["--seed", str(2**32)],
     ["--seeds", "0"], ["--task", "resnet"], ["--backend", "jax"]],
)
def test_bad_values_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", *argv])
    assert exit_.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_help_lists_each_optimizer_with_its_lr_on_each_task(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--help"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for name, choice in OPTIMIZERS.items():
        [line] = [line for line in lines if line.split()[:1] == [name]]
        numbers = [float(word) for word in line.split()[1:4]]
        assert numbers == [tasks.LEARNING_RATES[name][task] for task in tasks.TASKS]
        assert choice.label in line
