"""Importing adamkit's core needs nothing beyond NumPy."""

import subprocess
import sys

BLOCK_OPTIONAL = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "scipy", "matplotlib", "sklearn", "rich"}:
            raise ImportError(f"blocked optional dependency: {name}")
sys.meta_path.insert(0, Blocker())
"""


def run_without_optional_dependencies(code):
    return subprocess.run(
        [sys.executable, "-c", BLOCK_OPTIONAL + code], capture_output=True, text=True, timeout=120
    )


def test_core_imports_with_only_numpy():
    result = run_without_optional_dependencies(
        "import adamkit, adamkit.rules, adamkit.numpy, adamkit.kernels.reference\n"
        "import numpy as np\n"
        "w = np.ones(3)\n"
        "opt = adamkit.numpy.Adam([w], lr=0.1)\n"
        "opt.step([np.ones(3)])\n"
        "assert np.allclose(w, 0.9), w\n"
        "big = np.ones(5000, np.float32)\n"
        "from adamkit.kernels import quantized\n"
        "if quantized.available():\n"
        "    coded = adamkit.numpy.Adam([big], lr=0.1, state_dtype='int8')\n"
        "    coded.step([np.ones(5000, np.float32)])\n"
        "    assert coded.state[0]['exp_avg_codes'].dtype == np.int8\n"
        "r = adamkit.minimize(lambda x: float((x ** 2).sum()), [1.0, 2.0], options={'maxiter': 5})\n"
        "assert r.nit == 5, r\n"
        "print('ok')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocker_really_blocks_torch():
    result = run_without_optional_dependencies("import torch")
    assert result.returncode != 0
    assert "blocked optional dependency: torch" in result.stderr
