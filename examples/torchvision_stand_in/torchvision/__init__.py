"""A stand-in for torchvision, so that ``import timm`` works where torchvision cannot be installed.

timm imports torchvision when it is imported (``torchvision.ops.misc.FrozenBatchNorm2d``,
``torchvision.transforms``, ``torchvision.datasets``), even to reach ``timm.optim``. The PyPI
registry's only torchvision wheel is a CUDA build: beside the CPU torch its operators fail to
load (``RuntimeError: operator torchvision::nms does not exist``). Where you can, install the
CPU build instead::

    pip install torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu

Where you cannot (a PyPI-only machine, like adamkit's CI), put this directory first on the
path, for the process that imports timm only::

    PYTHONPATH=examples/torchvision_stand_in python examples/timm_registry.py

Every name under ``torchvision`` then imports, compares and hashes (timm builds tables of them
at import time), but calling or instantiating one raises ``ModuleNotFoundError``: timm's
optimizers and its models that do not call into torchvision work; its data pipeline, datasets
and frozen batch norm do not. Nothing is computed by the stand-in. transformers takes any
importable ``torchvision`` for a real one, so keep the stand-in out of processes that use its
image processors.
"""

import importlib.abc
import importlib.machinery
import sys
import types


def _refusal(name):
    return ModuleNotFoundError(
        f"{name} is not available: torchvision is not installed, and this is adamkit's stand-in for it "
        f"(examples/torchvision_stand_in), which only lets `import timm` succeed",
        name="torchvision",
    )


def _placeholder(owner, name):
    """The placeholder for ``owner.name``, made once: ``InterpolationMode.NEAREST`` is always
    the same object, so timm's tables keyed by it work."""
    if name.startswith("__"):
        raise AttributeError(name)
    placeholder = _Missing(f"{owner.__name__}.{name}", (), {})
    setattr(owner, name, placeholder)
    return placeholder


class _Missing(type):
    """A name torchvision would define: its attributes are further placeholders, and calling or
    instantiating it raises."""

    __getattr__ = _placeholder

    def __call__(cls, *args, **kwargs):
        raise _refusal(cls.__name__)


class _StandInModule(types.ModuleType):
    """A torchvision module: every name in it is a :class:`_Missing` placeholder."""

    __getattr__ = _placeholder


class _SubmoduleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes every ``torchvision.<anything>`` importable as a stand-in module."""

    def find_spec(self, name, path=None, target=None):
        if name.startswith(__name__ + "."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StandInModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


sys.meta_path.append(_SubmoduleFinder())
sys.modules[__name__].__class__ = _StandInModule
