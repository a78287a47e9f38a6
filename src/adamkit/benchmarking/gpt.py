"""The GPT that ``adamkit bench --train`` trains: a small decoder-only transformer over bytes.

Token and position embeddings, pre-LayerNorm blocks of causal self-attention
(:func:`torch.nn.functional.scaled_dot_product_attention`) and a GELU MLP four times as wide,
a final LayerNorm and an untied linear head over the 256 byte values, without biases (as in
most current GPTs) and without dropout. The full size, width 512 and 8 blocks of 8 heads over
128 bytes of context, holds 25.5M parameters, the low end of the 25–50M asked for, because the
step must stay short on two CPU cores: its whole step on 4 windows (512 tokens) is about
6 × 25.5M × 512 ≈ 78 GFLOP, about 5 CPU-seconds in float32 on the AVX2 machine of the first
run (2–3 s on two idle cores).

The arithmetic is float32 whatever the parameters' dtype: a bfloat16 model keeps its weights
in bfloat16 (2 bytes per parameter, and bfloat16 gradients) and widens each weight to float32
only while one operation uses it (:class:`WidenedLinear` keeps no float32 copy for backward).
On a CPU without bfloat16 instructions (AVX-512 BF16 or AMX), torch's bfloat16 matrix product
falls back to a slow generic loop: on the AVX2 machine of the first runs ``aten::mm`` took 26
times as long in bfloat16 as in float32, and a bfloat16 step about 12 times as long as a
float32 one, which would time the CPU's missing instructions rather than the optimizers.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

VOCABULARY = 256  # bytes


@dataclass(frozen=True)
class GPTSize:
    """The shape of a GPT and of the batches it trains on."""

    width: int
    layers: int
    heads: int
    context: int
    batch: int

    def parameter_count(self):
        """The parameters of :class:`GPT` at this size, counted from the shapes."""
        block = 2 * self.width + 4 * self.width * self.width + 8 * self.width * self.width
        embeddings = (VOCABULARY + self.context) * self.width
        return embeddings + self.layers * block + self.width + self.width * VOCABULARY


FULL = GPTSize(width=512, layers=8, heads=8, context=128, batch=4)
QUICK = GPTSize(width=32, layers=2, heads=2, context=16, batch=2)


class WidenedLinear(torch.autograd.Function):
    """``x @ weight.T`` in float32 for a weight of any dtype: the weight is widened in forward
    and again in backward, so only the weight itself is kept for backward, and its gradient
    comes back in the weight's dtype."""

    @staticmethod
    def forward(ctx, inputs, weight):
        """``inputs @ weight.float().T``, keeping ``inputs`` and the weight as it is for backward."""
        ctx.save_for_backward(inputs, weight)
        return inputs @ weight.float().T

    @staticmethod
    def backward(ctx, grad_output):
        """The gradients of the inputs (float32) and of the weight (in the weight's dtype)."""
        inputs, weight = ctx.saved_tensors
        grad_weight = grad_output.flatten(0, -2).T @ inputs.flatten(0, -2)
        return grad_output @ weight.float(), grad_weight.to(weight.dtype)


def linear(inputs, layer):
    """``layer(inputs)`` in float32 arithmetic."""
    if layer.weight.dtype == torch.float32:
        return layer(inputs)
    return WidenedLinear.apply(inputs, layer.weight)


def layer_norm(inputs, layer):
    """``layer(inputs)`` in float32 arithmetic (its weight widened)."""
    return functional.layer_norm(inputs, layer.normalized_shape, layer.weight.float(), None, layer.eps)


class Block(nn.Module):
    """A pre-LayerNorm transformer block: causal self-attention, then the MLP, each residual."""

    def __init__(self, size):
        super().__init__()
        self.heads = size.heads
        self.attention_norm = nn.LayerNorm(size.width, bias=False)
        self.qkv = nn.Linear(size.width, 3 * size.width, bias=False)
        self.projection = nn.Linear(size.width, size.width, bias=False)
        self.mlp_norm = nn.LayerNorm(size.width, bias=False)
        self.expand = nn.Linear(size.width, 4 * size.width, bias=False)
        self.contract = nn.Linear(4 * size.width, size.width, bias=False)

    def forward(self, hidden):
        batch, length, width = hidden.shape
        query, key, value = linear(layer_norm(hidden, self.attention_norm), self.qkv).split(width, dim=2)
        query, key, value = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (query, key, value))
        attended = functional.scaled_dot_product_attention(query, key, value, is_causal=True)
        hidden = hidden + linear(attended.transpose(1, 2).reshape(batch, length, width), self.projection)
        expanded = functional.gelu(linear(layer_norm(hidden, self.mlp_norm), self.expand))
        return hidden + linear(expanded, self.contract)


class GPT(nn.Module):
    """Embeddings, ``size.layers`` blocks, LayerNorm, the logits over bytes."""

    def __init__(self, size):
        super().__init__()
        self.tokens = nn.Embedding(VOCABULARY, size.width)
        self.positions = nn.Embedding(size.context, size.width)
        self.blocks = nn.ModuleList(Block(size) for _ in range(size.layers))
        self.norm = nn.LayerNorm(size.width, bias=False)
        self.head = nn.Linear(size.width, VOCABULARY, bias=False)
        for name, param in self.named_parameters():
            if param.dim() == 2:
                # GPT-2's initialisation: residual projections scaled down by the depth.
                scale = (
                    0.02 / math.sqrt(2 * size.layers)
                    if name.endswith(("projection.weight", "contract.weight"))
                    else 0.02
                )
                nn.init.normal_(param, std=scale)

    def forward(self, ids):
        hidden = self.tokens(ids).float() + self.positions.weight[: ids.shape[1]].float()
        for block in self.blocks:
            hidden = block(hidden)
        return linear(layer_norm(hidden, self.norm), self.head)


def loss(model, inputs, targets):
    """The mean next-byte cross-entropy (nats) of ``model``'s float32 logits."""
    logits = model(inputs)
    return functional.cross_entropy(logits.reshape(-1, VOCABULARY), targets.reshape(-1))
