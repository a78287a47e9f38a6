"""Small pieces every rule shares: the sign of the gradient and L2 weight decay."""


def directed_gradient(grad, maximize):
    """Return ``-grad`` when maximizing, else ``grad``: the direction the rule descends."""
    return -grad if maximize else grad


def with_l2_penalty(grad, param, weight_decay):
    r"""Fold an L2 penalty into the gradient: :math:`g \leftarrow g + \lambda\theta`."""
    return grad + weight_decay * param if weight_decay != 0 else grad
