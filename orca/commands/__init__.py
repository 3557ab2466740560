"""The `orca` subcommands, one module each.

Every module has `add_parser(commands)`, which adds its subparser and sets `run` (and, when it has usage rules
beyond argparse's, `check`) as the parser's defaults. `orca/cli.py` lists the modules in help order.

`run(args, settings, out, err) -> int` does the work; `check(parser, args)` ends bad usage with exit code 2
before anything touches ORCA_HOME.
"""

from __future__ import annotations

import argparse

USAGE_ERROR = 2


def usage_error(parser: argparse.ArgumentParser, message: str) -> None:
    """Exit 2 with `orca: error: message`, as argparse does for its own errors."""
    parser.exit(USAGE_ERROR, f"orca: error: {message}\n")


def check_names(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """Exit 2 on the first name that is not a valid collection name."""
    from orca_core.layout import check_collection

    for name in names:
        try:
            check_collection(name)
        except ValueError as error:
            usage_error(parser, str(error))


def example(*lines: str) -> str:
    """An `Example:` epilog for a command's --help (kept verbatim by RawDescriptionHelpFormatter)."""
    return "Example:\n" + "\n".join(f"  {line}" for line in lines)


def add_command(
    commands: argparse._SubParsersAction, name: str, *, help: str, description: str, examples: tuple[str, ...]
) -> argparse.ArgumentParser:
    """A subcommand's parser whose --help ends with `examples`."""
    return commands.add_parser(
        name, help=help, description=description, epilog=example(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
