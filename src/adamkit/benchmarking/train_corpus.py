"""The text ``adamkit bench --train`` learns: Python's own help topics, as bytes.

`pydoc_data.topics` (the language reference topics that ``help()`` shows) ships with every
Python, so the corpus needs no download and no file of ours: its topics in sorted order, joined
by newlines and encoded as UTF-8 (about 470 kB on Python 3.11). Minibatches are windows drawn
at random by a seeded generator, the same windows for every configuration of a seed; the
evaluation windows are fixed and the same for every seed.
"""

import torch

EVALUATION_SEED = 12345


class Corpus:
    """The corpus as a tensor of byte values, and its windows of ``context`` + 1 bytes."""

    def __init__(self, context):
        from pydoc_data.topics import topics

        text = "\n".join(topics[name] for name in sorted(topics))
        self.context = context
        self.ids = torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()

    def batch(self, count, generator):
        """``count`` random windows: the inputs and their next-byte targets."""
        starts = torch.randint(0, len(self.ids) - self.context, (count,), generator=generator)
        windows = self.ids[starts[:, None] + torch.arange(self.context + 1)]
        return windows[:, :-1], windows[:, 1:]

    def evaluation_batches(self, windows, batch):
        """``windows`` fixed random windows (the same for every run), in batches of ``batch``."""
        generator = torch.Generator().manual_seed(EVALUATION_SEED)
        return [self.batch(min(batch, windows - start), generator) for start in range(0, windows, batch)]
