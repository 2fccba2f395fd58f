"""The ``mmtutor`` command line.

Subcommands register themselves in :data:`COMMANDS` as ``name -> (add_arguments, run)``;
``run(args)`` returns the process exit code.
"""

import argparse
import json
import os
import signal
import sys

from mmtutor import __version__


class CLIError(Exception):
    """A user error: printed as ``mmtutor: error: ...`` with exit code 2, no traceback."""


def _need_tensorflow():
    """Import the Keras backend (TensorFlow by default) without its banner, for the commands
    that use it; an interrupt during the import stops the command."""
    import mmtutor
    from mmtutor import _fs

    mmtutor._quiet_tensorflow()
    _fs.raise_if_interrupted()  # an interrupt lost inside TensorFlow's import stops here


def _info_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _info_run(args):
    _need_tensorflow()
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


def _modalities_arg(text):
    from mmtutor.data import MODALITIES

    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in MODALITIES]
    if not names or bad or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected distinct names from {','.join(MODALITIES)} separated by commas, got {text!r}"
        )
    return names


_CHOICES = {"fusion": "FUSIONS", "text_kind": "TEXT_KINDS", "audio_kind": "AUDIO_KINDS"}


def _train_arguments(parser):
    """The flags of ``mmtutor train``: the settings of :class:`mmtutor.runs.RunConfig`, whose
    defaults stay there (a flag left out is not passed on)."""
    import dataclasses

    from mmtutor.runs import config as run_config

    parser.add_argument("--data", metavar="DIR", default=None,
                        help="dataset folder (default: the book's spoken-reviews dataset, generated into "
                             "the cache if needed)")
    parser.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    defaults = run_config.RunConfig.__dataclass_fields__
    for field, text in run_config.RunConfig.flags():
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        shown = ",".join(default) if isinstance(default, list) else default
        options = {"default": None, "dest": field.name,
                   "help": f"{text} (default {shown})" if default is not None else text}
        if field.name in _CHOICES:
            options["choices"] = getattr(run_config, _CHOICES[field.name])
        elif field.name == "modalities":
            options.update(type=_modalities_arg, metavar="LIST")
        elif field.name == "audio_noise":
            options.update(type=str, metavar="LOW,HIGH")
        else:
            options["type"] = type(default) if default is not None else int
            if field.name == "modality_dropout":
                options["metavar"] = "R"
        parser.add_argument(flag, **options)
    assert set(defaults) >= {"pretrain", "pretrain_epochs", "class_weight"}
    parser.add_argument("--no-pretrain", action="store_true",
                        help="train every encoder end to end on the label, even where the data annotates "
                             "each modality on its own (default: pretrain such encoders on that annotation, "
                             "then freeze them)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, metavar="E",
                        help="pretraining epochs of every encoder (default: text 20, image 20, audio 5)")
    parser.add_argument("--no-class-weight", action="store_true", help="do not balance the classes")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="cache folder of features and pretrained encoders (default: <mmtutor cache>/features)")
    parser.add_argument("--no-cache", action="store_true", help="compute features and pretrain encoders without "
                                                                 "the cache")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the run's metrics as JSON")


def _cache_dir(args):
    if args.no_cache:
        return None
    if args.cache_dir:
        return args.cache_dir
    from mmtutor.data import default_home

    return default_home() / "features"


def _load_data(path):
    from mmtutor import data

    try:
        return data.load_manifest(path)
    except (FileNotFoundError, TypeError, data.DataError) as exc:
        raise CLIError(str(exc)) from None


def _format_scores(name, scores):
    return f"  {name:<18} accuracy {scores['accuracy']:.3f}   F1 {scores['f1']:.3f}   n {scores['n']}"


def _format_evaluation(result):
    lines = [_format_scores(result.get("split", "all"), result)]
    for name, scores in result.get("subsets", {}).items():
        lines.append(_format_scores(name, scores))
    if result.get("ceiling") is not None:
        lines.append(f"  {'Bayes ceiling':<18} accuracy {result['ceiling']:.3f}")
    return "\n".join(lines)


def _train_settings(args):
    """The RunConfig of the flags given (the others keep RunConfig's defaults)."""
    from mmtutor.runs import RunConfig

    settings = {field.name: getattr(args, field.name) for field, _ in RunConfig.flags()
                if getattr(args, field.name) is not None}
    if args.no_pretrain:
        settings["pretrain"] = None
    if args.pretrain_epochs is not None:
        settings["pretrain_epochs"] = args.pretrain_epochs
    if args.no_class_weight:
        settings["class_weight"] = None
    try:
        return RunConfig(**settings)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None


def _train_run(args):
    import time

    from mmtutor import data
    from mmtutor.runs import train_run

    config = _train_settings(args)
    _need_tensorflow()
    if args.data is None:
        dataset = data.load_spoken_reviews(progress=not args.no_progress)
    else:
        dataset = _load_data(args.data)
    start = time.perf_counter()
    try:
        run = train_run(dataset, args.out, config, cache_dir=_cache_dir(args), overwrite=args.overwrite,
                        progress=not args.no_progress)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    seconds = time.perf_counter() - start
    metrics = run.metrics
    if args.json:
        print(json.dumps({"run": str(run.path), "seconds": round(seconds, 1), **metrics}, indent=2))
        return 0
    print(f"trained {config.fusion} fusion on {', '.join(run.modalities)} in {seconds:.1f} s: "
          f"{metrics['epochs_run']} epochs, best {metrics['best_epoch']}; run folder {run.path}")
    for split in ("val", "test"):
        if split in metrics:
            print(_format_evaluation({"split": split, **metrics[split]}))
    return 0


def _evaluate_arguments(parser):
    parser.add_argument("--run", required=True, metavar="RUN", help="run folder written by mmtutor train")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="dataset folder (default: the one the run was trained on)")
    parser.add_argument("--split", choices=("train", "val", "test", "all"), default="test",
                        help="split to evaluate on (default test)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load_run(path):
    from mmtutor.runs import RunError, load_run

    try:
        return load_run(path)
    except (RunError, TypeError) as exc:
        raise CLIError(str(exc)) from None


def _evaluate_run(args):
    _need_tensorflow()
    run = _load_run(args.run)
    dataset = None if args.data is None else _load_data(args.data)
    try:  # with no --data, the run's own dataset (Run.evaluate says if it has moved)
        result = run.evaluate(dataset, split=args.split, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        message = str(exc).replace("pass dataset=...", "pass --data DIR")
        raise CLIError(message) from None
    result = {"run": str(run.path), "data": str(result.pop("data")), **result}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"run {run.path} on {result['data']}")
        print(_format_evaluation(result))
    return 0


def _predict_arguments(parser):
    parser.add_argument("--run", required=True, metavar="RUN", help="run folder written by mmtutor train")
    parser.add_argument("--text", default=None, help="the review text")
    parser.add_argument("--image", default=None, metavar="PATH", help="a face image file")
    parser.add_argument("--audio", default=None, metavar="PATH", help="a spoken review (WAV, FLAC, ...)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _predict_run(args):
    if args.text is None and args.image is None and args.audio is None:
        raise CLIError("give at least one of --text, --image, --audio")
    if args.text is not None and not args.text.strip():
        raise CLIError("--text is empty; give the review's words or leave --text out")
    _need_tensorflow()
    run = _load_run(args.run)
    try:
        prob = run.predict(texts=None if args.text is None else [args.text],
                           image_paths=None if args.image is None else [args.image],
                           audio_paths=None if args.audio is None else [args.audio])[0]
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError) as exc:
        raise CLIError(str(exc)) from None
    k = int(prob.argmax())
    given = {"text": args.text is not None, "image": args.image is not None, "audio": args.audio is not None}
    used = [m for m in run.modalities if given[m]]
    masked = [m for m in run.modalities if not given[m]]
    if args.json:
        print(json.dumps({"label": run.classes[k], "probability": float(prob[k]),
                          "probabilities": dict(zip(run.classes, map(float, prob))),
                          "used": used, "masked": masked}, indent=2))
        return 0
    print(f"{run.classes[k]}  (probability {prob[k]:.3f})")
    print(f"used: {', '.join(used)}" + (f"; masked: {', '.join(masked)}" if masked else ""))
    return 0


COMMANDS = {
    "info": (_info_arguments, _info_run, "print versions, Keras backend and devices"),
    "data": (_data_arguments, _data_run, "generate or describe a multimodal dataset"),
    "train": (_train_arguments, _train_run, "train a fusion model into a run folder"),
    "evaluate": (_evaluate_arguments, _evaluate_run, "evaluate a run folder on a dataset split"),
    "predict": (_predict_arguments, _predict_run, "predict the sentiment of one review with a run folder"),
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
    """Entry point of the ``mmtutor`` console command; returns the exit code.

    A user error prints ``mmtutor: error: ...`` and returns 2, also for a folder that cannot be
    read or written (the message names it); Ctrl-C at any stage prints ``mmtutor: interrupted``
    and returns 130, with what was there before left intact.
    """
    from mmtutor import _fs

    _fs.interrupted = False
    try:  # first, so that Ctrl-C is handled the same at every stage, imports included
        previous = signal.signal(signal.SIGINT, _fs.on_sigint)
    except ValueError:  # not the main thread (e.g. called from a test runner's worker thread)
        previous = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        return args._run(args)
    except CLIError as exc:
        print(f"mmtutor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmtutor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mmtutor data describe DIR | head`: the reader has gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return 141
    except OSError as exc:  # a folder that cannot be created, read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mmtutor: error: cannot use {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
