"""The ``adamkit`` entry point: subcommand registration and the missing-extra message."""

import importlib
import importlib.util
import sys
import types

import pytest

from adamkit.cli import main as cli


def fake_subcommand(record):
    def add_arguments(parser):
        parser.add_argument("--times", type=int, default=1)

    def run(args):
        record.append(args.times)
        return 7

    return types.SimpleNamespace(
        __doc__="Do a fake thing.\n\nAt length.", add_arguments=add_arguments, run=run
    )


@pytest.mark.parametrize("extra", cli.EXTRA_MODULES)
def test_a_missing_extra_exits_2_with_a_one_line_install_hint(extra, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, extra, None)  # makes `import extra` fail
    assert cli.main(["compare", "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert repr(extra) in captured.err and "pip install 'adamkit[cli]'" in captured.err


def test_compare_without_torch_exits_2_and_suggests_the_numpy_backend(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)
    out = tmp_path / "never"
    assert cli.main(["compare", "--epochs", "1", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "'torch'" in captured.err and "pip install 'adamkit[cli]'" in captured.err
    assert "--backend numpy --task logreg" in captured.err
    assert not out.exists()


def test_a_subcommand_whose_module_needs_torch_is_replaced_by_one_that_says_so(monkeypatch, capsys):
    real_import = importlib.import_module

    def import_module(name, package=None):
        if name == "adamkit.cli.bench":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)
    assert set(cli.load_subcommands()) == {"compare", "trajectories", "bench", "playground"}
    assert cli.main(["bench", "--quick", "--rules", "adam"]) == 2
    error = capsys.readouterr().err
    assert error == "adamkit bench: needs 'torch', which is not installed; run: pip install 'adamkit[cli]'\n"


def test_subcommand_modules_are_registered_with_their_docstring_and_run(capsys):
    record = []
    parser = cli.build_parser({"fake": fake_subcommand(record)})
    args = parser.parse_args(["fake", "--times", "3"])
    assert args.run(args) == 7 and record == [3]
    parser.print_help()
    assert "Do a fake thing." in capsys.readouterr().out


def test_compare_and_trajectories_are_registered_and_bench_only_if_its_module_exists():
    loaded = cli.load_subcommands()
    assert loaded["compare"] is importlib.import_module("adamkit.cli.compare")
    assert loaded["trajectories"] is importlib.import_module("adamkit.cli.trajectories")
    bench_exists = importlib.util.find_spec("adamkit.cli.bench") is not None
    assert ("bench" in loaded) == bench_exists


def test_an_absent_bench_module_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "adamkit.cli.bench", None)
    assert set(cli.load_subcommands()) == {"compare", "trajectories", "playground"}


def test_a_missing_import_inside_bench_is_not_hidden(monkeypatch):
    real_import = importlib.import_module

    def import_module(name, package=None):
        if name == "adamkit.cli.bench":
            raise ModuleNotFoundError("No module named 'a_typo'", name="a_typo")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)
    with pytest.raises(ModuleNotFoundError, match="a_typo"):
        cli.load_subcommands()


def test_a_missing_compare_module_is_not_hidden(monkeypatch):
    monkeypatch.setitem(sys.modules, "adamkit.cli.compare", None)
    with pytest.raises(ModuleNotFoundError):
        cli.load_subcommands()


def test_unknown_arguments_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["trajectories", "--fast"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --fast" in capsys.readouterr().err


def test_no_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2
    assert "COMMAND" in capsys.readouterr().err
