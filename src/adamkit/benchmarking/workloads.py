"""The parameter lists the benchmark steps: their tensor shapes, full size and quick size.

- **A**: 20M fp32 parameters in 50 tensors of 400,000.
- **B**: GPT-2 small's parameter list (124,439,808 parameters in 148 tensors).
- **C**: 10,000 tensors of 1,000 parameters, where per-tensor overhead dominates.

``--quick`` swaps each for a tiny version of the same structure; ``--scale`` multiplies the
first dimension of every tensor (the tensor count is unchanged).
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    shapes: tuple[tuple[int, ...], ...]

    @property
    def n_tensors(self):
        return len(self.shapes)

    @property
    def n_params(self):
        return sum(math.prod(shape) for shape in self.shapes)

    def scaled(self, factor):
        """This workload with every tensor's first dimension times ``factor`` (at least 1)."""
        if factor == 1:
            return self
        shapes = tuple((max(1, round(shape[0] * factor)),) + shape[1:] for shape in self.shapes)
        return Workload(self.name, f"{self.description}, scaled ×{factor:g}", shapes)


def uniform_shapes(count, size):
    """``count`` flat tensors of ``size`` parameters."""
    return ((size,),) * count


def gpt2_shapes(vocab, n_ctx, d_model, n_layer):
    """The parameter shapes of a GPT-2 language model, in ``model.parameters()`` order.

    Token and position embeddings, then per block: ln_1, attention (c_attn, c_proj),
    ln_2, MLP (c_fc, c_proj) with Conv1D weights stored (in, out); then ln_f.
    """
    d = d_model
    block = (
        (d,), (d,),                  # ln_1 weight, bias
        (d, 3 * d), (3 * d,),        # attn.c_attn weight, bias
        (d, d), (d,),                # attn.c_proj weight, bias
        (d,), (d,),                  # ln_2 weight, bias
        (d, 4 * d), (4 * d,),        # mlp.c_fc weight, bias
        (4 * d, d), (d,),            # mlp.c_proj weight, bias
    )  # fmt: skip
    return ((vocab, d), (n_ctx, d)) + block * n_layer + ((d,), (d,))


FULL = {
    "A": Workload("A", "20M params in 50 tensors", uniform_shapes(50, 400_000)),
    "B": Workload("B", "GPT-2 small, 124M params", gpt2_shapes(50257, 1024, 768, 12)),
    "C": Workload("C", "10,000 tensors × 1,000 params", uniform_shapes(10_000, 1_000)),
}

QUICK = {
    "A": Workload("A", "quick: 5 tensors × 1,000 params", uniform_shapes(5, 1_000)),
    "B": Workload("B", "quick: GPT-2 shapes, d_model 8, 2 blocks", gpt2_shapes(64, 16, 8, 2)),
    "C": Workload("C", "quick: 50 tensors × 10 params", uniform_shapes(50, 10)),
}

NAMES = tuple(FULL)


def select(names, *, quick=False, scale=1.0):
    """The workloads called ``names`` (``"A"``, ``"B"``, ``"C"``), quick-sized or scaled."""
    table = QUICK if quick else FULL
    return [table[name].scaled(scale) for name in names]
