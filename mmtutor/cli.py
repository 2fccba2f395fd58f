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


def _data_arguments(parser):
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    make = sub.add_parser(
        "make", help="generate the spoken-reviews dataset into a folder",
        description="Generate the spoken-reviews dataset (text, face images, speech) into a folder.",
    )
    make.add_argument("--out", required=True, metavar="DIR", help="folder to write the dataset into")
    make.add_argument("--n", type=int, default=None, help="number of samples (default: the book's size)")
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.add_argument("--sarcasm-rate", type=float, default=None, metavar="R", help="share of sarcastic samples")
    make.add_argument("--missing-rate", type=float, default=None, metavar="R",
                      help="share of samples with one modality blanked")
    make.add_argument("--overwrite", action="store_true", help="replace a dataset already in DIR")
    make.add_argument("--no-progress", action="store_true", help="no progress bar")
    describe = sub.add_parser(
        "describe", help="summarise a dataset folder",
        description="Check a dataset folder (manifest.csv and its files) and print counts per split and "
                    "label, missing modalities, sarcastic samples and the Bayes ceilings.",
    )
    describe.add_argument("path", metavar="DIR", help="dataset folder or its manifest.csv")
    describe.add_argument("--skip-bad", action="store_true", help="leave out bad rows instead of failing")
    describe.add_argument("--json", action="store_true", help="print the summary as JSON")


def _format_summary(summary, info):
    lines = [f"samples        {summary['n']}"]
    for split, counts in summary["splits"].items():
        per_class = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "n")
        lines.append(f"  {split:<12} {counts['n']:>5}  ({per_class})")
    missing = ", ".join(f"{m} {k}" for m, k in summary["missing"].items())
    lines.append(f"missing        {missing}")
    if summary["sarcastic"] is not None:
        lines.append(f"sarcastic      {summary['sarcastic']}")
    if summary["skipped"]:
        lines.append(f"skipped rows   {summary['skipped']}")
    if summary["ceilings"]:
        lines.append("Bayes ceilings (best possible accuracy):")
        order = ["text", "image", "audio", "text+image", "text+audio", "image+audio", "all"]
        names = [k for k in order if k in summary["ceilings"]] + sorted(set(summary["ceilings"]) - set(order))
        for name in names:
            lines.append(f"  {name:<12} {summary['ceilings'][name]:.3f}")
    if info.get("content_hash"):
        lines.append(f"content hash   {info['content_hash'][:16]}")
    return "\n".join(lines)


def _data_run(args):
    import time
    import warnings

    from mmtutor import data

    if args.data_command == "make":
        knobs = {}
        if args.sarcasm_rate is not None:
            knobs["sarcasm_rate"] = args.sarcasm_rate
        if args.missing_rate is not None:
            knobs["missing_rate"] = args.missing_rate
        n = data.DEFAULT_N if args.n is None else args.n
        start = time.perf_counter()
        try:
            data.make_spoken_reviews(args.out, n=n, seed=args.seed, progress=not args.no_progress,
                                     overwrite=args.overwrite, **knobs)
        except (ValueError, TypeError, FileExistsError) as exc:
            raise CLIError(str(exc)) from None
        seconds = time.perf_counter() - start
        ds = data.load_manifest(args.out)
        print(f"wrote {len(ds)} samples to {args.out} in {seconds:.1f} s")
        print(_format_summary(ds.describe(), ds.info))
        return 0
    if args.data_command == "describe":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # skipped rows are listed below
                ds = data.load_manifest(args.path, on_error="skip" if args.skip_bad else "raise")
        except (FileNotFoundError, data.DataError) as exc:
            raise CLIError(str(exc)) from None
        summary = ds.describe()
        if args.json:
            summary["skipped_rows"] = [{"id": i, "reason": r} for i, r in ds.skipped]
            print(json.dumps(summary, indent=2))
        else:
            print(_format_summary(summary, ds.info))
            for rid, reason in ds.skipped:
                print(f"skipped {rid}: {reason}")
        return 0
    raise CLIError("data needs an action: 'make' or 'describe' (see mmtutor data --help)")


COMMANDS = {
    "info": (_info_arguments, _info_run, "print versions, Keras backend and devices"),
    "data": (_data_arguments, _data_run, "generate or describe a multimodal dataset"),
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
