"""One configuration of ``adamkit bench --train`` trained in a process of its own.

Run as ``python -m adamkit.benchmarking.train_worker '<job JSON>'`` by
:mod:`adamkit.benchmarking.train`, which drives it over its standard input and output, one JSON
object a line: the worker answers ``{"ready": ...}`` (or ``{"error": ...}`` when the model or
the optimizer cannot be built), then one ``{"time_s", "loss"}`` per ``step`` command, and the
summary of ``Trainer.summary`` to ``finish``, after which it exits. Anything else the worker prints
goes to standard error.

A step is what a training loop does: forward, loss, backward, ``optimizer.step()``,
``optimizer.zero_grad()``; its time excludes drawing the batch. The first step is measured for
live gradients (:class:`~adamkit.benchmarking.train_memory.LiveGradients`), and those hooks are
then removed, so no other step pays for them.
"""

import json
import os
import sys
import time
import traceback

import torch

from adamkit.benchmarking import gpt, train_configs, train_memory
from adamkit.benchmarking.runner import apply_threads
from adamkit.benchmarking.train_corpus import Corpus

EVALUATION_WINDOWS = {"full": 64, "quick": 8}


class Trainer:
    """The model, optimizer and batches of one configuration and seed."""

    def __init__(self, job):
        self.job = job
        self.baseline_rss_bytes = train_memory.resident_bytes("current")
        size = gpt.QUICK if job["quick"] else gpt.FULL
        self.size = size
        self.corpus = Corpus(size.context)
        torch.manual_seed(job["seed"])
        config = train_configs.BY_NAME[job["config"]]
        self.model = gpt.GPT(size).to(getattr(torch, config.model_dtype))
        self.params = list(self.model.parameters())
        self.live_gradients = train_memory.LiveGradients(self.params)
        self.optimizer = config.make_optimizer(self.params)
        self.batches = torch.Generator().manual_seed(job["seed"])
        self.steps = 0

    def step(self):
        inputs, targets = self.corpus.batch(self.size.batch, self.batches)
        measuring = self.steps == 0
        start = time.perf_counter()
        loss = gpt.loss(self.model, inputs, targets)
        loss.backward()
        if measuring:
            self.live_gradients.measure()
        self.optimizer.step()
        self.optimizer.zero_grad()
        elapsed = time.perf_counter() - start
        if measuring:
            self.live_gradients.detach()
        self.steps += 1
        return {"time_s": elapsed, "loss": loss.item()}

    def summary(self):
        """The memory of the run so far, then the final loss (evaluated after the peak is read)."""
        peak_rss_bytes = train_memory.resident_bytes("peak")
        state = train_memory.state_bytes_by_key(self.optimizer)
        summary = {
            "parameters": sum(param.numel() for param in self.params),
            "parameter_tensors": len(self.params),
            "parameter_bytes": train_memory.tensor_bytes(self.params),
            "full_gradient_bytes": sum(param.numel() * param.element_size() for param in self.params),
            "peak_live_gradient_bytes": self.live_gradients.peak_bytes,
            "state_bytes_by_key": state,
            "state_bytes": sum(state.values()),
            "peak_rss_bytes": peak_rss_bytes,
            "baseline_rss_bytes": self.baseline_rss_bytes,
        }
        return {**summary, "final_loss": self.evaluate()}

    @torch.no_grad()
    def evaluate(self):
        """The mean cross-entropy on the fixed evaluation windows, in float32 from the weights."""
        model = self.model.float().eval()
        windows = EVALUATION_WINDOWS["quick" if self.job["quick"] else "full"]
        batches = self.corpus.evaluation_batches(windows, self.size.batch)
        total = sum(gpt.loss(model, inputs, targets).item() * len(inputs) for inputs, targets in batches)
        return total / windows


def serve(job, commands, answers):
    """Build the trainer for ``job``, then answer ``commands`` (lines) on ``answers`` until ``finish``."""

    def answer(message):
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    apply_threads(job["threads"])
    try:
        trainer = Trainer(job)
    except Exception as error:
        traceback.print_exc()
        answer({"error": f"{type(error).__name__}: {error}"})
        return
    answer({"ready": True, "torch_threads": torch.get_num_threads()})
    actions = {"step": trainer.step, "finish": trainer.summary}
    for line in commands:
        command = line.strip()
        if command not in actions:
            raise ValueError(f"train worker: unknown command {command!r}")
        try:
            answer(actions[command]())
        except Exception as error:
            traceback.print_exc()
            answer({"error": f"{type(error).__name__}: {error}"})
            return
        if command == "finish":
            return


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # The protocol owns the real standard output; anything else printed, from Python or C, goes
    # to standard error.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(json.loads(argv[0]), sys.stdin, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
