"""A crash fuzzer: randomised sequences of what a user can do between optimizer steps.

:mod:`tests.fuzz.sequences` draws a sequence (an optimizer configuration and a list of
operations) from a seed, :mod:`tests.fuzz.ops` is the catalogue of operations,
:mod:`tests.fuzz.worlds` holds an optimizer and its parameters for either front end,
:mod:`tests.fuzz.execute` runs one sequence and judges it, and :mod:`tests.fuzz.harness` runs
batches of sequences in subprocesses with a timeout and names the sequence behind a crash.
"""
