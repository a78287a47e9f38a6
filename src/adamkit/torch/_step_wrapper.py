"""What wraps ``step``: the optimizer's lock, torch's hook wrapper only when something needs
it, and no autograd.

torch.optim.Optimizer wraps the ``step`` of every subclass to run the step pre- and post-hooks
and to open the profiler's ``Optimizer.step#<class>.step`` range. Opening the range enters
torch's operator dispatch, which is costly when a step finds that code cold in the cache (as it
does after the rest of a training step; docs/benchmark-log.md has the figures). So adamkit's
optimizers take torch's wrapper while a profiler runs or a step hook is registered, and
otherwise call ``step`` directly, then the profiler's hook point ``_optimizer_step_code`` as
torch's wrapper does. Likewise ``step`` runs with autograd off through one switch of the grad
mode, not through ``torch.no_grad``'s context-manager objects. The whole step, hooks included,
holds the optimizer's lock (:mod:`adamkit.step_lock`), so two threads cannot step one
optimizer at once. Under ``torch.compile`` all of it runs eagerly, behind one graph break
(:mod:`adamkit.torch._untraced`).
"""

import functools

import torch
from torch.optim import optimizer as torch_optimizer

from adamkit.step_lock import lock_of
from adamkit.torch._untraced import untraced

# torch's registries of global step hooks; if a torch release renames them, every step takes
# torch's wrapper.
_GLOBAL_HOOKS = tuple(
    getattr(torch_optimizer, name, None) for name in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
)
_HOOKS_KNOWN = all(hooks is not None for hooks in _GLOBAL_HOOKS)


def profile_hook_step(func):
    """``func`` (an optimizer's ``step``) under the optimizer's lock, wrapped as torch wraps it
    when hooks or a profiler are active, else called as it is."""
    hooked = torch.optim.Optimizer.profile_hook_step(func)

    @untraced
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        self = args[0]
        with lock_of(self):
            if (
                not _HOOKS_KNOWN
                or torch._C._autograd._profiler_enabled()
                or self._optimizer_step_pre_hooks
                or self._optimizer_step_post_hooks
                or any(_GLOBAL_HOOKS)
            ):
                return hooked(*args, **kwargs)
            result = func(*args, **kwargs)
            self._optimizer_step_code()
            return result

    return wrapper


def without_grad(func):
    """``func`` run with autograd off, as under ``torch.no_grad()``; on, if the optimizer's
    defaults say ``differentiable=True``, as torch's ``_use_grad_for_differentiable`` does."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        enabled = torch.is_grad_enabled()
        torch._C._set_grad_enabled(bool(args[0].defaults.get("differentiable")))
        try:
            return func(*args, **kwargs)
        finally:
            torch._C._set_grad_enabled(enabled)

    return run
