"""The ``mmtutor`` command line.

Subcommands register themselves in :data:`COMMANDS` as ``name -> (add_arguments, run)``;
``run(args)`` returns the process exit code.
"""

import argparse
import json
import sys

from mmtutor import __version__


class CLIError(Exception):
    """A user error: printed as ``mmtutor: error: ...`` with exit code 2, no traceback."""


def _info_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _info_run(args):
    from mmtutor.utils import environment_report, format_report

    report = environment_report()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


COMMANDS = {
    "info": (_info_arguments, _info_run, "print versions, Keras backend and devices"),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mmtutor", description="Multimodal deep learning by doing: tools behind the mmtutor book."
    )
    parser.add_argument("--version", action="version", version=f"mmtutor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_arguments, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv=None):
    """Entry point of the ``mmtutor`` console command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return args._run(args)
    except CLIError as exc:
        print(f"mmtutor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmtutor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
