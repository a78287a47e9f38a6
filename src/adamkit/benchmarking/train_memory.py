"""What one training process holds: its resident memory, and the bytes of parameters, gradients
and optimizer state, each counted from the tensors themselves."""

import torch

MEMORY_FIELDS = {"peak": "VmHWM", "current": "VmRSS"}


def resident_bytes(which, path="/proc/self/status"):
    """This process's ``"peak"`` (high-water mark, which never goes down) or ``"current"``
    resident set size, in bytes, from ``/proc/self/status``; ``None`` where it cannot be read."""
    field = MEMORY_FIELDS[which] + ":"
    try:
        with open(path) as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        return None
    return None


def tensor_bytes(tensors):
    """The bytes of the distinct storages under ``tensors`` (a view or an alias counts once)."""
    storages = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr(), storage.nbytes()] = storage.nbytes()
    return sum(storages.values())


def state_bytes_by_key(optimizer):
    """The bytes of every tensor in ``optimizer.state``, summed per state key (``exp_avg``,
    ``exp_avg_codes``, ``kahan_compensation``, ``step``...)."""
    by_key = {}
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                by_key.setdefault(key, []).append(value)
    return {key: tensor_bytes(values) for key, values in sorted(by_key.items())}


class LiveGradients:
    """The most bytes of ``.grad`` tensors alive at once while it is attached, measured at the
    moment each gradient is complete (a post-accumulate-grad hook on every parameter, registered
    before the optimizer's own, so it sees the new gradient before any optimizer frees it) and
    whenever :meth:`measure` is called (after backward, before the step)."""

    def __init__(self, params):
        self.params = list(params)
        self.peak_bytes = 0
        self.handles = [param.register_post_accumulate_grad_hook(self._on_gradient) for param in self.params]

    def _on_gradient(self, _param):
        self.measure()

    def measure(self):
        live = tensor_bytes(param.grad for param in self.params if param.grad is not None)
        self.peak_bytes = max(self.peak_bytes, live)

    def detach(self):
        """Remove the hooks; ``peak_bytes`` keeps what they saw."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
