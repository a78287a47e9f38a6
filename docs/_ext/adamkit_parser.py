"""The ``adamkit`` command's argparse parser, built as ``adamkit.cli.main`` builds it, for sphinx-argparse."""

import argparse
import textwrap

from adamkit.cli.main import build_parser, load_subcommands


def parser():
    """The parser, with each epilog (preformatted text, such as ``compare``'s table of learning
    rates) as a reStructuredText literal block, since sphinx-argparse reads epilogs as reST."""
    command = build_parser(load_subcommands())
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subcommand in action.choices.values():
                if subcommand.epilog:
                    subcommand.epilog = "::\n\n" + textwrap.indent(subcommand.epilog, "    ")
    return command
