"""SGD with momentum and Nesterov momentum, in torch's formulation (Sutskever et al., 2013).

The buffer starts as the first gradient (not as (1−dampening)·g), and Nesterov's look-ahead
is the gradient plus μ times the updated buffer::

    g ← ±g + λθ
    b ← g                              on the first step
    b ← μ·b + (1 − dampening)·g        afterwards
    d ← g + μ·b  (Nesterov)   or   d ← b   (heavy ball)   or   d ← g   (μ = 0)
    θ ← θ − γ·d
"""

from tests.reference._float64 import float64_copy


def sgd(
    params,
    grads,
    *,
    lr=1e-3,
    momentum=0.0,
    dampening=0.0,
    weight_decay=0.0,
    nesterov=False,
    maximize=False,
):
    """Run SGD on ``params`` for ``len(grads)`` steps; return ``(params, state)``.

    The state holds ``momentum_buffer`` only when ``momentum`` is not zero, as torch's does.
    """
    theta = float64_copy(params)
    buffer = None
    for grad in grads:
        g = float64_copy(grad)
        if maximize:
            g = -g
        g = g + weight_decay * theta
        direction = g
        if momentum != 0.0:
            if buffer is None:
                buffer = g.copy()
            else:
                buffer = momentum * buffer + (1.0 - dampening) * g
            direction = g + momentum * buffer if nesterov else buffer
        theta = theta - lr * direction
    state = {} if momentum == 0.0 else {"momentum_buffer": buffer}
    return theta, state
