r"""The 8-bit block-wise codec for optimizer state: the NumPy reference.

A state tensor is flattened and cut into blocks of :data:`BLOCK` consecutive elements (the
last block may be shorter), and the scales are a 1-d array, one per block. With
``rows=True`` each row (the elements of one index along dim 0) is cut into blocks of its own
instead, and the scales have shape ``(rows, blocks per row)``. That layout is what FSDP2 needs:
it shards a tensor by rows, so no block straddles two processes, and the scales shard the
same way as the tensor (:mod:`adamkit.torch._compact_state`). Each block keeps one float32 scale, its absolute maximum
:math:`s = \max_i |x_i|`, and one 8-bit code per element. The map from codes to values is a
power law, fine near zero and coarse near the maximum:

* **signed** (``exp_avg`` of Adam and Adamax, int8 codes :math:`c \in [-127, 127]`):

  .. math::
      c = \operatorname{sign}(x)\,\operatorname{rint}\!\big(127\sqrt{|x|/s}\big), \qquad
      \hat x = s \cdot t\,|t|, \quad t = c / 127

* **unsigned** (Adam's ``exp_avg_sq`` and ``max_exp_avg_sq``, Adamax's ``exp_inf``,
  Adadelta's ``square_avg`` and ``acc_delta``; uint8 codes :math:`c \in [0, 255]`):

  .. math::
      c = \big[255\sqrt{\sqrt{x}/\sqrt{s}}\big], \qquad
      \hat x = s \cdot (t^2)^2, \quad t = c / 255

``rint`` rounds half to even (for a scale below :math:`2^{-64}` the signed map computes
:math:`|x|/s` as :math:`(|x|\,2^{64}) \cdot (1/(s\,2^{64}))`, both products exact, so that
:math:`1/s` of a subnormal :math:`s` cannot overflow, and above :math:`2^{126}` as
:math:`(|x|\,2^{-64}) \cdot (1/(s\,2^{-64}))`, so that :math:`1/s` is not subnormal, which
flush-to-zero would make 0); :math:`[\cdot]` rounds to the nearest integer, a half up, and is
computed without a root of its own: with :math:`w = \sqrt{x} \cdot (255^2/\sqrt{s})` (the square
root of :math:`x` is the one Adam's step computes anyway), :math:`c` is the number of thresholds
:math:`(j + \tfrac12)^2`, :math:`j = 0 \dots 254`, at or below :math:`w`. The C kernel counts
them from an estimate of :math:`\sqrt{w}` (a hardware reciprocal square root, which does not
occupy the divider that Adam's own square root and divisions need) corrected by one comparison
with a threshold, and agrees with this count bit for bit. A block of zeros has :math:`s = 0` and codes 0; a block holding
a NaN has :math:`s` NaN, which decodes every element to NaN, and codes 0.

**Infinities and overflow.** An infinity in a block (a moment that overflowed, as Adam's
:math:`v` does for a gradient of :math:`10^{38}`) stays in its own element: the scale
is the block's largest :math:`|x|` clamped at the largest float32, :math:`F = 3.4\cdot10^{38}`
(a NaN stays NaN), the infinity gets the largest code (:math:`\pm127`, :math:`255`: the signed
magnitude is at most 127, the unsigned :math:`w` at most :math:`255^2`) and decodes to an
infinity again rounding to nearest (:math:`(F/127^2)\cdot127^2` overflows), as float32 state
would hold it, while the block's other elements get codes against :math:`s = F`, finite ones.
A finite element within :math:`0.8\,\%` of :math:`F` in a block of scale :math:`F` (one holding an
infinity, or whose largest :math:`|x|` is :math:`F` itself) also gets the largest code and
decodes to an infinity. Every operation
is float32 and is written in the order the C kernel (``csrc/quant8.c``) computes it, so the
two agree bit for bit.

**Why these maps.** Adam divides by :math:`\sqrt{v}`, so what matters for ``exp_avg_sq`` is the
*relative* error of :math:`\sqrt v`, also for elements far below their block's maximum: a
linear map sends every :math:`v < s/510` to 0, and then the step of that element is
:math:`m/\epsilon`. The fourth-root map keeps :math:`\sqrt{\hat v}` on a linear grid of 255
steps of :math:`\sqrt s / 255^2`, so :math:`\sqrt v` is represented down to
:math:`\approx 4\cdot 10^{-6}\sqrt s` (gradients :math:`2.6\cdot10^5` times smaller than the
block's largest). ``exp_avg`` enters the step linearly and changes sign, so it gets the milder
square-root map with a sign. ``benchmarks/quant_map_choice.py`` measures the choice.

Adadelta's ``square_avg`` and ``acc_delta`` are second moments that its step also uses through
square roots, :math:`\sqrt{u+\epsilon}/\sqrt{v+\epsilon}`: the same case as Adam's
:math:`v`. On the state of a digits MLP trained with Adadelta the fourth-root map decodes far
fewer non-zero elements to 0 than the square map (linear on :math:`\sqrt v`), and the final
losses of both maps match float32's (``quant_map_choice.py --rule adadelta``; the numbers are in
BENCHMARKS.md, "Issue 5: 8-bit state for Adamax and Adadelta").

Adamax's ``exp_inf`` is :math:`u = \max(\beta_2 u, |g| + \epsilon)`, a running maximum of
:math:`|g|`, and its step divides by it directly, :math:`\theta \leftarrow \theta -
\gamma/(1-\beta_1^t)\, m/u`. What the step needs is the *relative* error of :math:`u` for
every element of a block, also those far below the block's maximum (inputs that are seldom
active): an underestimated :math:`u` enlarges that element's step, and one decoded to 0 forgets
the past gradients (the next :math:`u` is just :math:`|g| + \epsilon`). :math:`u` has the units
of Adam's :math:`\sqrt v`, which the fourth-root map stores on a square map; so the candidates
were the square map :math:`\hat u = s\,t^2` and the fourth-root map :math:`\hat u = s\,t^4`.
Rounding to the nearest code bounds the relative error at code :math:`c` by :math:`1/c` for the
square map and :math:`2/c` for the fourth-root map: the square map is finer for
:math:`u > s/16`, the fourth-root map below, and the square map sends every :math:`u < s/510^2
\approx 3.8\cdot10^{-6}s` to 0 where the fourth-root map still holds :math:`u` down to
:math:`s/510^4 \approx 1.5\cdot10^{-11}s`. On the state of a digits MLP trained with Adamax
the square map has the smaller median relative error, the fourth-root map the smaller tail,
and it decodes no element to 0; the final losses of both maps are close to each other and to
float32's (``quant_map_choice.py --rule adamax``; the numbers are in BENCHMARKS.md, "Issue 5:
8-bit state for Adamax and Adadelta"). The tail matters more than the median here, so
``exp_inf`` takes the fourth-root map; it also keeps one map per code dtype (int8 signed, uint8
unsigned) for every key.

**Error bound** (tested). With :math:`t = c/L` the decoded value, the code is the nearest
grid point in the transformed domain :math:`u = (|x|/s)^{1/p}` (:math:`p=2, L=127` signed;
:math:`p=4, L=255` unsigned), so :math:`|u - t| \le 1/(2L)` (plus float32 rounding), and by the
mean value theorem

.. math:: |x - \hat x| \le s\,\big((u + \tfrac{1}{2L})^p - u^p\big) \le s\,\frac{p}{2L}
          \big(u + \tfrac{1}{2L}\big)^{p-1},

at most :math:`s/127` for the signed map and :math:`s \cdot 2/255` for the unsigned one, and
much smaller near zero.
"""

import numpy as np

BLOCK = 256
"""Elements per block. The scale costs 4/256 = 0.016 bytes per element, so Adam's two states
take 2.03 bytes per parameter; a block of float32 working values (1 KiB) stays in L1 cache."""

SIGNED_LEVELS = 127
UNSIGNED_LEVELS = 255
SIGNED_POWER = 2
UNSIGNED_POWER = 4


def n_blocks(numel):
    """The number of blocks of a tensor of ``numel`` elements: ``ceil(numel / BLOCK)``."""
    return -(-int(numel) // BLOCK)


def absmax_shape(shape, rows=False):
    """The shape of the scales of a tensor of ``shape``: ``(n_blocks,)``, or with ``rows``
    ``(shape[0], blocks per row)``."""
    if not rows:
        return (n_blocks(np.prod(shape, dtype=np.int64)),)
    return (shape[0], n_blocks(np.prod(shape[1:], dtype=np.int64)))


def _rows(x, absmax_shape):
    """``x`` as float32 of shape (rows, elements per row) for scales of ``absmax_shape``."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(absmax_shape) == 2:
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))
    return x.reshape(1, -1)


def _blocks(x, absmax_shape):
    """Each row of ``x`` zero-padded to whole blocks: shape (rows * blocks per row, BLOCK)."""
    rows = _rows(x, absmax_shape)
    padded = np.zeros((rows.shape[0], n_blocks(rows.shape[1]) * BLOCK), np.float32)
    padded[:, : rows.shape[1]] = rows
    return padded.reshape(-1, BLOCK)


def _root(u, power):
    """:math:`u^{1/p}` for p in (1, 2, 4), by square roots (as the kernel computes it)."""
    for _ in range({1: 0, 2: 1, 4: 2}[power]):
        u = np.sqrt(u)
    return u


SMALL_SCALE = np.float32(2.0**-64)
"""Below this block scale the signed map multiplies values and scale by :data:`SCALE_BOOST`
(exactly) before dividing, so that the reciprocal of a subnormal scale cannot overflow."""
SCALE_BOOST = np.float32(2.0**64)
"""The exact factor on values and scale below :data:`SMALL_SCALE`."""
LARGE_SCALE = np.float32(2.0**126)
"""Above this block scale the signed map multiplies values and scale by
:data:`LARGE_SCALE_BOOST` before dividing, so that the reciprocal of the scale is not subnormal
(flush-to-zero would make it 0, and an infinity times 0 NaN). The scale's product is exact, and
so is every value's that could get a code other than 0."""
LARGE_SCALE_BOOST = np.float32(2.0**-64)
"""The exact factor on values and scale above :data:`LARGE_SCALE`."""
LARGEST = np.finfo(np.float32).max
"""The largest block scale: an infinity in a block leaves the scale at this value, not infinite."""

UNSIGNED_THRESHOLDS = (np.arange(UNSIGNED_LEVELS, dtype=np.float32) + np.float32(0.5)) ** 2
r"""The unsigned codes' boundaries in :math:`w = \sqrt{x}\,(255^2/\sqrt{s})`: :math:`(j + 1/2)^2`
(exact in float32)."""


def _power(t, power):
    """:math:`t^p` for p in (1, 2, 4), by squaring (as the kernel computes it)."""
    for _ in range({1: 0, 2: 1, 4: 2}[power]):
        t = t * t
    return t


def _encode(x, levels, power, signed, rows):
    scales_shape = absmax_shape(np.shape(x), rows) if np.ndim(x) else (n_blocks(1),)
    blocks = _blocks(x, scales_shape)
    # An infinity leaves the scale at LARGEST (np.minimum keeps a NaN).
    absmax = np.minimum(np.max(np.abs(blocks), axis=1), LARGEST)
    # A block holding a NaN decodes to NaN through its scale: its codes are 0.
    finite = np.isfinite(absmax)
    blocks = np.where(finite[:, None], blocks, np.float32(0))
    scale = np.where(finite & (absmax > 0), absmax, np.float32(1))[:, None]
    if power == 4:
        # sqrt(x) (255^2 / sqrt(s)) against the thresholds: the kernel reuses the sqrt(v) of the step.
        # At most 255^2: the largest code, also for an infinity.
        square_levels = np.float32(levels * levels)
        scaled = np.minimum(np.sqrt(np.abs(blocks)) * (square_levels / np.sqrt(scale)), square_levels)
        magnitude = np.searchsorted(UNSIGNED_THRESHOLDS, scaled, side="right").astype(np.float32)
    else:
        # (x b) (1 / (s b)), b = 2^64 below a scale of 2^-64 (1/s of a subnormal s would
        # overflow) and 2^-64 above 2^126 (1/s would be subnormal).
        boost = np.where(scale < SMALL_SCALE, SCALE_BOOST, np.where(scale > LARGE_SCALE, LARGE_SCALE_BOOST, np.float32(1)))
        u = (blocks * boost) * (np.float32(1) / (scale * boost))
        # At most 127: rounding upward the block's largest can come out 128, an infinity inf.
        magnitude = np.minimum(np.rint(_root(np.abs(u), power) * np.float32(levels)), np.float32(levels))
    codes = np.copysign(magnitude, blocks) if signed else magnitude
    dtype = np.int8 if signed else np.uint8
    n_rows, row_length = _rows(x, scales_shape).shape
    codes = codes.reshape(n_rows, n_blocks(row_length) * BLOCK)[:, :row_length]
    return codes.astype(dtype).reshape(np.shape(x)), absmax.reshape(scales_shape)


def _decode(codes, absmax, levels, power, signed):
    absmax = np.asarray(absmax, np.float32)
    c = _rows(np.asarray(codes), absmax.shape).astype(np.float32)
    shape = c * np.abs(c) if signed and power == 2 else _power(c, power)
    if signed and power != 2:
        shape = np.copysign(np.abs(shape), c)
    units = absmax.reshape(c.shape[0], n_blocks(c.shape[1])) / np.float32(float(levels) ** power)
    with np.errstate(over="ignore"):  # the largest code of the largest scale: an infinity
        return (np.repeat(units, BLOCK, axis=1)[:, : c.shape[1]] * shape).reshape(np.shape(codes))


def _check_absmax(codes, absmax):
    absmax = np.asarray(absmax)
    codes = np.asarray(codes)
    rows = absmax.ndim == 2 and codes.ndim >= 1
    expected = absmax_shape(codes.shape, rows) if codes.ndim else (n_blocks(1),)
    if absmax.dtype != np.float32 or absmax.shape != expected:
        raise ValueError(
            f"absmax must be a float32 array of shape {expected}, one scale per "
            f"block of {BLOCK}; got {absmax.dtype} {absmax.shape}"
        )


def encode_signed(x, rows=False):
    r"""Return ``(codes, absmax)``: int8 codes of ``x``'s shape and one float32 scale per block
    (per block of each row with ``rows``).

    :math:`c = \operatorname{sign}(x)\operatorname{rint}(127\sqrt{|x|/s})`, :math:`s` the block's
    absolute maximum.
    """
    return _encode(x, SIGNED_LEVELS, SIGNED_POWER, signed=True, rows=rows)


def decode_signed(codes, absmax):
    r"""Return the float32 values of int8 ``codes``: :math:`\hat x = s\,t|t|`, :math:`t = c/127`.

    The layout (flat or by rows) is read from ``absmax``'s shape."""
    if np.asarray(codes).dtype != np.int8:
        raise TypeError(f"codes must be int8, got {np.asarray(codes).dtype}")
    _check_absmax(codes, absmax)
    return _decode(codes, absmax, SIGNED_LEVELS, SIGNED_POWER, signed=True)


def encode_unsigned(x, rows=False):
    r"""Return ``(codes, absmax)`` of non-negative ``x``: uint8 codes and one scale per block
    (per block of each row with ``rows``).

    :math:`c = [255\sqrt{\sqrt{x}/\sqrt{s}}]` (that is :math:`255\,(x/s)^{1/4}`, a half rounded up),
    :math:`s` the block's maximum. Negative
    values raise ``ValueError``.
    """
    values = np.asarray(x, dtype=np.float32)
    if np.any(values < 0):
        raise ValueError("encode_unsigned: x has negative values; the unsigned map holds x >= 0")
    return _encode(values, UNSIGNED_LEVELS, UNSIGNED_POWER, signed=False, rows=rows)


def decode_unsigned(codes, absmax):
    r"""Return the float32 values of uint8 ``codes``: :math:`\hat x = s\,(t^2)^2`, :math:`t = c/255`."""
    if np.asarray(codes).dtype != np.uint8:
        raise TypeError(f"codes must be uint8, got {np.asarray(codes).dtype}")
    _check_absmax(codes, absmax)
    return _decode(codes, absmax, UNSIGNED_LEVELS, UNSIGNED_POWER, signed=False)

