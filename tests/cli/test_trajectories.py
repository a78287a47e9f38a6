"""``adamkit trajectories`` run in-process with few steps."""

import io
import json
import math
import struct

import numpy as np
import pytest

pytest.importorskip("rich")
pytest.importorskip("matplotlib")

import matplotlib.image
from rich.console import Console

from adamkit import specs
from adamkit.cli import trajectories as command
from adamkit.cli.main import build_parser, load_subcommands, main
from adamkit.specs import DRAWN
from adamkit.trajectories import FUNCTIONS, OPTIMIZERS, trace
from adamkit.trajectories import figures, plot

STEPS = 12
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def pixels(inches):
    return round(inches[0] * plot.DPI), round(inches[1] * plot.DPI)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    out = tmp_path_factory.mktemp("trajectories")
    buffer = io.StringIO()
    args = build_parser(load_subcommands()).parse_args(
        ["trajectories", "--steps", str(STEPS), "--seed", "7", "--bias-correction", "--weight-decay", "0.5",
         "--out", str(out)]
    )
    status = command.run(args, console=Console(file=buffer, width=150))
    return {"status": status, "out": out, "text": buffer.getvalue(),
            "data": json.loads((out / figures.JSON_FILE).read_text())}


def test_every_figure_is_a_valid_png_of_its_size(drawn):
    assert drawn["status"] == 0
    expected = {figures.plot_file(name): plot.FUNCTION_INCHES for name in FUNCTIONS}
    expected[figures.BIAS_CORRECTION_FILE] = plot.PAIR_INCHES
    expected[figures.WEIGHT_DECAY_FILE] = plot.PAIR_INCHES
    for file, inches in expected.items():
        path = drawn["out"] / file
        assert png_size(path) == pixels(inches), file
        image = matplotlib.image.imread(path)
        assert image.shape[:2] == pixels(inches)[::-1] and image.std() > 0.01


def test_json_holds_each_path_and_its_final_distance(drawn):
    data = drawn["data"]
    assert list(data["functions"]) == list(FUNCTIONS) and data["seed"] == 7
    for name, record in data["functions"].items():
        function = FUNCTIONS[name]
        assert record["steps"] == STEPS and record["start"] == list(function.start)
        assert list(record["paths"]) == list(function.optimizers or OPTIMIZERS)
        for path_record in record["paths"].values():
            path = np.array(path_record["path"])
            assert path.shape == (STEPS + 1, 2)
            assert path_record["final_point"] == path[-1].tolist()
            distance = math.dist(path[-1], record["reference"])
            assert path_record["final_distance"] == pytest.approx(distance, rel=1e-12)


def test_the_paths_are_those_of_the_library(drawn):
    for name in ("rosenbrock", "noisy"):
        record = drawn["data"]["functions"][name]
        for t in trace(FUNCTIONS[name], list(record["paths"]), steps=STEPS, seed=7):
            assert record["paths"][t.name]["path"] == t.path.tolist()


def test_legend_labels_show_the_final_distances_of_the_json(drawn, tmp_path):
    function = FUNCTIONS["beale"]
    record = drawn["data"]["functions"]["beale"]
    figure = plot.plot_function(function, trace(function, list(record["paths"]), steps=STEPS),
                                tmp_path / "beale.png", STEPS)
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    for path_record in record["paths"].values():
        assert path_record["legend"] in legend
        assert f"d={path_record['final_distance']:.3g}" in path_record["legend"]
        assert f"lr={path_record['lr']:g}" in path_record["legend"]


def test_printed_table_matches_the_json(drawn):
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")]
            for line in drawn["text"].splitlines() if line.startswith("│")]
    records = [path for record in drawn["data"]["functions"].values() for path in record["paths"].values()]
    records += list(drawn["data"]["bias_correction"]["paths"].values())
    records += list(drawn["data"]["weight_decay"]["paths"].values())
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        assert row[1] == record["label"]
        assert float(row[2]) == pytest.approx(record["lr"], rel=1e-5)
        assert float(row[3]) == pytest.approx(record["final_distance"], rel=1e-3)


def test_the_side_by_side_figures_are_recorded(drawn):
    bias = drawn["data"]["bias_correction"]
    assert list(bias["paths"]) == ["adam", "uncorrected"] and bias["betas"] == [0.9, 0.999]
    assert bias["steps"] == figures.BIAS_CORRECTION["steps"]
    decay = drawn["data"]["weight_decay"]
    assert decay["weight_decay"] == 0.5 and list(decay["paths"]) == ["adam-l2", "adamw"]
    assert list(decay["marked_points"].values())[1] == pytest.approx([4 * 0.1 / 0.6, 10 / 10.5])


def test_optimizers_and_functions_can_be_chosen(tmp_path):
    assert main(["trajectories", "--functions", "saddle,noisy", "--optimizers", "adam,sgd",
                 "--steps", "3", "--out", str(tmp_path), "--quiet"]) == 0
    data = json.loads((tmp_path / figures.JSON_FILE).read_text())
    assert list(data["functions"]) == ["saddle", "noisy"]
    assert all(list(record["paths"]) == ["adam", "sgd"] for record in data["functions"].values())
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["noisy.png", "saddle.png"]


def test_all_draws_every_optimizer_including_each_rule_shown(tmp_path):
    # AdamW is drawn beside Adam with L2 decay, by --weight-decay; AdamWScheduleFree's path is
    # its evaluation point x, and its label says so.
    assert {spec.name for spec, _ in DRAWN.values()} == {spec.name for spec in specs.ALL} - {"AdamW"}
    assert OPTIMIZERS["schedulefree"].label == "AdamWScheduleFree at its evaluation point x"
    assert command.names(FUNCTIONS, "function")("ALL") == list(FUNCTIONS)
    assert main(["trajectories", "--functions", "saddle", "--optimizers", "all", "--steps", "3",
                 "--out", str(tmp_path), "--quiet"]) == 0
    data = json.loads((tmp_path / figures.JSON_FILE).read_text())
    assert list(data["functions"]["saddle"]["paths"]) == list(OPTIMIZERS)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--optimizers", "adam,all"], "unknown optimizer 'all'"),
        (["--functions", "himmelblau"], "unknown function 'himmelblau'"),
        (["--functions", "beale,beale"], "beale is listed twice"),
        (["--optimizers", "madgrad"], "unknown optimizer 'madgrad'"),
        (["--steps", "0"], "must be an integer >= 1"),
        (["--weight-decay", "-1"], "must be a finite number >= 0"),
        (["--weight-decay", "nan"], "must be a finite number >= 0"),
        (["--seed", "-3"], "must be an integer in [0, 2**32)"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(argv, says, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_:
        main(["trajectories", *argv, "--out", str(out)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {argv[0]}" in error and says in error
    assert not out.exists()


def test_an_out_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["trajectories", "--out", str(blocker / "runs")]) == 2
    assert "cannot write to --out" in capsys.readouterr().err


def test_help_lists_each_function_with_its_start_and_learning_rates(capsys):
    with pytest.raises(SystemExit):
        main(["trajectories", "--help"])
    epilog = capsys.readouterr().out.partition("functions (learning rates per optimizer):")[2]
    for function in FUNCTIONS.values():
        [line] = [line for line in epilog.splitlines() if line.split()[:1] == [function.name]]
        assert str(function.start) in line and f"{function.steps} steps" in line
        assert f"adam={function.lrs['adam']:g}" in line
