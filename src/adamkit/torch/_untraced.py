"""The step as one call that ``torch.compile`` does not trace.

adamkit's step is C kernels behind safety checks over Python objects (plans, pointers, the
optimizer's lock): nothing Dynamo can put in a graph. So under ``torch.compile`` the whole step,
hooks and checks included, runs eagerly, as ``torch.compiler.disable`` would run it, and costs
one graph break, at the call of ``step``. No part of the step is in a graph, so no guard depends
on a hyperparameter, a parameter or the state: an ``lr`` changed each step, as a float or a
tensor, recompiles nothing. Under ``fullgraph=True`` the call of ``step`` raises Dynamo's
``torch._dynamo.exc.Unsupported``.

``torch.compiler.disable`` alone would switch the frame evaluator off and on at every eager
step too, and Dynamo would count two graph breaks: one where ``step`` is called and one in
``step``'s own frame, which it compiles next. So the function is also marked the way ``disable``
marks a function, with plain attributes and the C evaluator's per-code setting: Dynamo does not
inline it (the one graph break) and does not compile its frame; run while Dynamo's evaluator is
active (or while torch says it is compiling, as ``torch.export``'s non-strict tracing does), it
hands over to the disabled function, and otherwise it costs one check.
"""

import functools

import torch

REASON = "adamkit's step runs eagerly: its C kernels and safety checks cannot be traced"

_eval_frame = torch._C._dynamo.eval_frame


def untraced(func):
    """``func`` run eagerly whenever Dynamo would trace it or compile what it calls."""
    disabled = torch.compiler.disable(func, reason=REASON)

    @functools.wraps(func)
    def run(*args, **kwargs):
        if torch.compiler.is_compiling() or _eval_frame.get_eval_frame_callback() is not None:
            return disabled(*args, **kwargs)
        return func(*args, **kwargs)

    run._torchdynamo_disable = True
    run._torchdynamo_disable_msg = REASON
    _eval_frame.set_code_exec_strategy(
        run.__code__, _eval_frame._FrameExecStrategy(_eval_frame._FrameAction.SKIP, _eval_frame._FrameAction.DEFAULT)
    )
    return run
