"""The ``adamkit`` entry point: an argparse parser with one subparser per subcommand module.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; its docstring's
first line is its help. ``main`` returns the exit status: 0 on success, 2 for a usage error or
a missing extra.
"""

import argparse
import importlib
import sys

# The modules of the ``cli`` extra; the command cannot work without any of them.
EXTRA_MODULES = ("torch", "sklearn", "matplotlib", "rich")
INSTALL_HINT = "pip install 'adamkit[cli]'"

# Subcommand name -> (module, whether the subcommand may be absent from this install).
SUBCOMMANDS = {
    "compare": ("adamkit.cli.compare", False),
    "bench": ("adamkit.cli.bench", True),
}


def missing_extra():
    """The first module of the ``cli`` extra that cannot be imported, or ``None``."""
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def load_subcommands():
    """Import the subcommand modules; an optional one is skipped only if it does not exist.

    An import error raised from inside an existing module is a bug in it and propagates.
    """
    loaded = {}
    for name, (module_name, optional) in SUBCOMMANDS.items():
        try:
            loaded[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if not (optional and error.name == module_name):
                raise
    return loaded


def build_parser(subcommands):
    parser = argparse.ArgumentParser(
        prog="adamkit", description="Compare and benchmark the adamkit optimizers."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in subcommands.items():
        doc = (module.__doc__ or "").strip()
        subparser = commands.add_parser(
            name,
            help=doc.splitlines()[0] if doc else None,
            description=doc or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv=None):
    """Run ``adamkit`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    missing = missing_extra()
    if missing is not None:
        print(
            f"adamkit: the command needs {missing!r}, which is not installed; "
            f"run: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    args = build_parser(load_subcommands()).parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
