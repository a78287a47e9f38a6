"""Sphinx configuration of adamkit's documentation; ``scripts/docs`` builds it into ``docs/_build/html``."""

import importlib
import pkgutil
import sys
import types
from pathlib import Path

# The argparse parser of the `adamkit` command, for sphinx-argparse (docs/commands.rst).
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import adamkit  # noqa: E402

project = "adamkit"
author = "adamkit's authors"
copyright = "adamkit's authors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax's files copied into the build, so the math renders with no network.
    "sphinx-mathjax-offline",
    "sphinxarg.ext",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# The benchmark log is a diary of dated runs with links into the repository, read on GitHub; the
# reference tables are in BENCHMARKS.md.
exclude_patterns = ["_build", "benchmark-log.md"]
myst_heading_anchors = 3

# Every cross-reference must resolve to something documented here; the only ones not checked
# name other projects' objects (there is no network to fetch their inventories).
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(numpy|np|torch|scipy|collections|typing|builtins)\b.*")]
# torch.nn.Module.forward's docstring, which the models of `adamkit compare` inherit, names torch's Module.
nitpick_ignore = [("py:class", "Module")]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autosummary_generate = True

templates_path = ["_templates"]
html_theme = "alabaster"
html_title = "adamkit"


def shadowed_modules(package):
    """The modules under ``package`` whose parent package binds their name to something else
    (``adamkit.rules.adam`` is the function ``adam``): the name belongs to that object."""
    shadowed = []
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        parent, _, leaf = module.name.rpartition(".")
        value = getattr(importlib.import_module(parent), leaf, None)
        if value is not None and not isinstance(value, types.ModuleType):
            shadowed.append(module.name)
    return shadowed


# The page of every module (internals.rst) shows the modules that the API pages document without
# indexing them, so that each name has one target, and leaves out the modules whose names are taken.
autosummary_context = {
    "shadowed": shadowed_modules(adamkit),
    "api_modules": [
        "adamkit",
        "adamkit.rules",
        "adamkit.rules.schedule_free",
        "adamkit.torch",
        "adamkit.numpy",
        "adamkit.diagnostics",
        "adamkit.diagnostics.formulas",
        "adamkit.kernels",
    ],
}
