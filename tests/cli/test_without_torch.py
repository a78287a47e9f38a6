"""``compare --backend numpy`` and ``trajectories`` work where torch cannot be imported."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("rich")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

BLOCK_TORCH = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":  # as if torch were not installed
            raise ModuleNotFoundError(f"blocked: {name}", name=name)
sys.meta_path.insert(0, Blocker())
from adamkit.cli.main import main
"""


def run_without_torch(code):
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code],
                          capture_output=True, text=True, timeout=300)


def test_numpy_logreg_and_trajectories_run_with_torch_blocked(tmp_path):
    result = run_without_torch(
        f"assert main(['compare', '--task', 'logreg', '--backend', 'numpy', '--epochs', '2', "
        f"'--optimizers', 'adam,adagrad', '--diagnostics', '--out', {str(tmp_path)!r}]) == 0\n"
        f"assert main(['trajectories', '--functions', 'saddle', '--steps', '5', "
        f"'--out', {str(tmp_path)!r}, '--quiet']) == 0\n"
        "assert main(['compare', '--out', 'never']) == 2\n"
        "assert not [name for name in sys.modules if name.split('.')[0] == 'torch']\n"
        "print('no torch')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("no torch")
    assert "--backend torch needs 'torch', which is not installed" in result.stderr
    data = json.loads((tmp_path / "logreg.json").read_text())
    assert data["config"]["backend"] == "numpy" and "torch" not in data["versions"]
    assert set(data["results"]) == {"adam", "adagrad"}
    for file in ("logreg.png", "logreg-diagnostics.png", "saddle.png"):
        assert (tmp_path / file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(json.loads((tmp_path / "trajectories.json").read_text())["functions"]) == {"saddle"}


def test_the_blocker_really_blocks_torch():
    result = run_without_torch("import torch")
    assert result.returncode != 0 and "blocked: torch" in result.stderr
