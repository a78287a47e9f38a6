"""The scripts in examples/ run end to end, and the framework in each really trains with adamkit.

Each example runs in its own process, as a user would run it (the frameworks' global state and
timm's torchvision stand-in stay out of the test process); its ``main`` returns what happened,
which these tests check: the held-out loss fell, the optimizer the framework stepped is
adamkit's, every parameter was stepped as many times as the framework counted steps.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import adamkit.torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADAMKIT_ADAMW = f"{adamkit.torch.AdamW.__module__}.{adamkit.torch.AdamW.__qualname__}"

RUN_MAIN = """
import json, runpy, sys
facts = runpy.run_path(sys.argv[1])["main"](*sys.argv[3:])
with open(sys.argv[2], "w") as output:
    json.dump(facts, output)
"""


def needs(*packages):
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (pip install adamkit[integrations])")


def run_example(tmp_path, script, *arguments, extra_path=()):
    """Run ``main(*arguments)`` of examples/``script`` in a fresh interpreter; return its facts."""
    # The example imports the adamkit these tests import, and anything else on the path first.
    adamkit_root = Path(adamkit.__file__).resolve().parents[1]
    search_path = [*extra_path, adamkit_root, *filter(None, [os.environ.get("PYTHONPATH")])]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, search_path)))
    facts_file = tmp_path / "facts.json"
    completed = subprocess.run(
        [sys.executable, "-c", RUN_MAIN, str(EXAMPLES / script), str(facts_file), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(facts_file.read_text())


def assert_trained_with_adamkit(facts):
    assert facts["optimizer"] == ADAMKIT_ADAMW
    assert facts["loss_after"] < 0.8 * facts["loss_before"]
    assert facts["global_step"] > 0
    assert facts["steps_taken"] and set(facts["steps_taken"]) == {facts["global_step"]}


@needs("transformers", "accelerate")
def test_hugging_face_trainer_steps_adamkit_both_ways_and_resumes_exactly(tmp_path):
    facts = run_example(tmp_path, "hf_trainer.py", str(tmp_path / "runs"))
    for way in ("optimizers", "optimizer_cls_and_kwargs"):
        assert_trained_with_adamkit(facts[way])
    assert facts["optimizers"]["param_groups"] == 1
    # Built by Trainer: decay and no-decay groups.
    assert facts["optimizer_cls_and_kwargs"]["param_groups"] == 2
    assert facts["resume"]["optimizer"] == ADAMKIT_ADAMW
    assert facts["resume"]["largest_weight_difference"] == 0.0


@needs("lightning")
def test_lightning_configure_optimizers_returning_adamkit(tmp_path):
    facts = run_example(tmp_path, "lightning_module.py", str(tmp_path / "run"))
    assert_trained_with_adamkit(facts)
    # Lightning stepped the per-step cosine schedule half-way (T_max is twice the steps): each
    # group's rate is half its own initial one (1e-2 for the body, 3e-3 for the head).
    assert facts["learning_rates"] == pytest.approx([5e-3, 1.5e-3])


@needs("timm")
def test_timm_registry_creates_adamkit_by_name(tmp_path):
    # timm imports torchvision; without one, the example's stand-in lets `import timm` work.
    stand_in = [EXAMPLES / "torchvision_stand_in"] if importlib.util.find_spec("torchvision") is None else []
    facts = run_example(tmp_path, "timm_registry.py", extra_path=stand_in)
    assert_trained_with_adamkit(facts)
    assert sorted(facts["weight_decay_per_group"]) == [0.0, 0.05]
    assert facts["registered"] == ["adamkit-adam", "adamkit-adamax", "adamkit-adamw"]
    assert facts["lookahead_wraps"] == ADAMKIT_ADAMW
    # The reason the names have no "_": timm looks up only the piece after the last one.
    assert facts["underscore_name_gives"] == "torch.optim.adamw.AdamW"
