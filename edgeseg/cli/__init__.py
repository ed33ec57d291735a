"""The ``edgeseg`` command line.

Each command is a module with ``add_parser(subparsers)`` and ``run(args) -> int``, named in :data:`COMMANDS`
(``export`` is :mod:`edgeseg.exporters.cli`). Options several commands share are in :mod:`.options`.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from collections.abc import Sequence

# command name -> the module with its add_parser(subparsers) and run(args); `export` lives with the exporters
COMMANDS = {
    "predict": "edgeseg.cli.predict",
    "run": "edgeseg.cli.run",
    "info": "edgeseg.cli.info",
    "export": "edgeseg.exporters.cli",
    "train": "edgeseg.cli.train",
    "val": "edgeseg.cli.val",
    "benchmark": "edgeseg.cli.benchmark",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse with 'did you mean ...?' hints for unknown flags and bad choices (exit code 2).

    Abbreviated flags are not accepted (``--max-frame`` is an error naming ``--max-frames``), so adding a
    flag later never changes what an existing command line means.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        hint = self._hint(message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")

    def _hint(self, message: str) -> str:
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2)) or [c.strip() for c in match.group(2).split(",")]
            close = difflib.get_close_matches(match.group(1), choices, n=1, cutoff=0.5)
            return f" (did you mean '{close[0]}'?)" if close else ""
        return ""

    def option_strings(self) -> list[str]:
        return [s for action in self._actions for s in action.option_strings]

    def unknown_argument_error(self, extras: Sequence[str]):
        """Report unknown arguments, naming the closest valid flag for each unknown one."""
        valid = self.option_strings()
        flags = [a for a in extras if a.startswith("-")]
        parts = []
        for arg in flags or extras:
            if arg.startswith("-"):
                flag = arg.split("=", 1)[0]
                close = difflib.get_close_matches(flag, valid, n=1, cutoff=0.6)
                parts.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
            else:
                parts.append(repr(arg))
        message = "unrecognized arguments: " + ", ".join(parts)
        if not any(
            a.startswith("-") and difflib.get_close_matches(a.split("=", 1)[0], valid, n=1, cutoff=0.6) for a in extras
        ):
            message += f"; valid options: {', '.join(v for v in valid if v.startswith('--'))}"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> ArgumentParser:
    from edgeseg.version import __version__

    parser = ArgumentParser(
        prog="edgeseg", description="YOLOv8-seg / YOLO11-seg instance segmentation on edge devices."
    )
    parser.add_argument("--version", action="version", version=f"edgeseg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    subparsers.required = True
    for name in COMMANDS:
        module = _command_module(name)
        sub = module.add_parser(subparsers)
        sub.set_defaults(_command=module)
    return parser


def _command_module(name: str):
    return importlib.import_module(COMMANDS[name])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgeseg`` command; returns the exit code."""
    from edgeseg.errors import EdgesegError

    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _subparser_for(parser, args.command).unknown_argument_error(extras)
    try:
        return int(args._command.run(args) or 0)
    except BrokenPipeError:  # e.g. `edgeseg info m.onnx | head`: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open: it replaces stdout until exit
        return 1
    except (EdgesegError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"edgeseg: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgeseg: interrupted", file=sys.stderr)
        return 130


def _subparser_for(parser: ArgumentParser, command: str) -> ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command, parser)
    return parser
