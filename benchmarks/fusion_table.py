"""Accuracy and speed of every fusion method, on frozen encoder features: one Markdown table.

This is the measurement behind the chapter on fusion (book/building_blocks/06_fusion.ipynb),
run as a script so that its numbers can be reproduced and compared between versions. It is
not part of ``make test``.

The recipe is the chapter's:

1. load the default spoken-reviews dataset and extract the features of the train, val and test
   splits (32x32 images, 32-band log-mel spectrograms, 24 tokens), standardised with
   statistics of the present training samples only (images per channel, audio per mel band:
   ``fit_image_stats``, ``fit_audio_stats``);
2. pretrain the three encoders with ``mmtutor.runs.pretrain_encoders``, each on its own
   modality's annotation (the literal polarity of the words, what the face shows, what the
   voice sounds like), on the training samples where that modality is present;
3. freeze them and encode every split once;
4. train one fusion head per method and seed on those features (``train_fusion_heads``), so
   that every method sees the same features, data and schedule: only the fusion layer differs.

Usage (from the repository root)::

    .venv/bin/python benchmarks/fusion_table.py
    .venv/bin/python benchmarks/fusion_table.py --seeds 5 --epochs 30 --modality-dropout 0.3
    .venv/bin/python benchmarks/fusion_table.py --fusions concat late tensor

Columns of the table (one row per fusion method; "mean ± sd" is over seeds):

- accuracy: test accuracy, mean over seeds, with a 95 % percentile bootstrap interval of that
  mean (the test samples are resampled, the predictions of all seeds are kept: it shows how much
  the number depends on which 300 samples happen to be in the test split, not the seed spread);
- macro F1, accuracy on the sarcastic test samples and on the test samples with at least one
  modality missing (from the modality mask);
- trainable parameters of the head, seconds per training epoch (mean over seeds, as measured by
  ``train_fusion_heads``: the first epoch's graph tracing is included), and inference samples/s
  of the seed-0 head (``head.predict`` on the test features, batch size 256, after a warm-up
  call; median of 5 timed calls).
"""

import argparse
import datetime as dt
import os
import platform
import sys
import time

import mmtutor  # first: keeps TensorFlow's start-up banner out of the output

# isort: split
import keras
import numpy as np

from mmtutor.compare import encode, quiet_tf_data, train_fusion_heads
from mmtutor.data import bayes_predict, load_spoken_reviews
from mmtutor.metrics import bootstrap_ci, f1_score
from mmtutor.models.encoders import audio_encoder, image_encoder, text_encoder
from mmtutor.models.fusion_model import FUSION_NAMES
from mmtutor.preprocess import extract_features, fit_audio_stats, fit_image_stats, standardize, standardize_audio
from mmtutor.runs import pretrain_encoders
from mmtutor.utils import set_seed

MODALITIES = ("text", "image", "audio")  # the order of the mask's columns
DIM = 16  # pooled feature size of every encoder (small, so that tensor fusion stays affordable)
FEATURE_SETTINGS = {"image_size": (32, 32), "audio": {"n_mels": 32, "hop_length": 320}}
N_BOOT = 1000


def log(message):
    """Progress goes to stderr, so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare the fusion methods on frozen encoder features; print a Markdown table.")
    parser.add_argument("--seeds", type=int, default=3,
                        help="number of seeds (heads per method), seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs", type=int, default=20,
                        help="training epochs of each fusion head (default 20)")
    parser.add_argument("--modality-dropout", type=float, default=0.0,
                        help="modality-dropout rate of the heads in training (default 0.0)")
    parser.add_argument("--fusions", nargs="+", default=list(FUSION_NAMES), choices=FUSION_NAMES,
                        metavar="NAME",
                        help=f"fusion methods to compare (default: all of {', '.join(FUSION_NAMES)})")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be at least 1")
    if not 0.0 <= args.modality_dropout < 1.0:
        parser.error("--modality-dropout must be in [0, 1)")
    return args


# ------------------------------------------------------------------------------------------
# 1. Features, standardised with training statistics only
# ------------------------------------------------------------------------------------------

def load_features():
    dataset = load_spoken_reviews()
    train = extract_features(dataset.subset("train"), **FEATURE_SETTINGS)
    val, test = (extract_features(dataset.subset(name), vectorizer=train["vectorizer"], **FEATURE_SETTINGS)
                 for name in ("val", "test"))
    # Statistics of the PRESENT training samples: a missing image (all zeros) or a missing audio
    # (silence) would drag them, and test samples must not take part (leakage).
    image_mean, image_std = fit_image_stats(train["image"], train["mask"][:, 1])
    audio_stats = fit_audio_stats(train["audio"], train["mask"][:, 2])  # per mel band
    for split in (train, val, test):
        # A missing image or clip becomes all zeros: the mask, not a constant, says it is missing.
        split["image"] = standardize(split["image"], image_mean, image_std, mask=split["mask"][:, 1])
        split["audio"] = standardize_audio(split["audio"], split["mask"][:, 2], audio_stats)
    frames = {name: dataset.subset(name).frame for name in ("train", "val", "test")}
    return dataset, train, val, test, frames


# ------------------------------------------------------------------------------------------
# 2. Encoders pretrained on each modality's own annotation
# ------------------------------------------------------------------------------------------

def pretrained_encoders(train, frame, val):
    """The chapter's encoders, each pretrained on its modality's own annotation and frozen.

    ``mmtutor.runs.pretrain_encoders`` trains each one plus a softmax layer on a hidden column
    of the manifest (the literal polarity, what the face shows, what the voice sounds like),
    never the sentiment label, so the fusion heads still have to learn how to combine them.
    """
    builders = {
        "text": lambda: text_encoder(train["vectorizer"].vocab_size, train["text"].shape[1],
                                     kind="gru", dim=DIM, return_sequence=True,
                                     name="text_encoder"),
        "image": lambda: image_encoder(train["image"].shape[1:], dim=DIM, return_sequence=True,
                                       name="image_encoder"),
        "audio": lambda: audio_encoder(train["audio"].shape[1:], dim=DIM, return_sequence=True,
                                       name="audio_encoder"),
    }
    encoders = {}
    for modality in MODALITIES:
        set_seed(0)
        encoders[modality] = builders[modality]()
    with quiet_tf_data():
        report = pretrain_encoders(encoders, train, frame, seed=0, val=val)
    return encoders, report


# ------------------------------------------------------------------------------------------
# 3. Fusion heads and their measurements
# ------------------------------------------------------------------------------------------

def seed_mean_accuracy(y_true, predictions):
    """Accuracy averaged over seeds; ``predictions`` has one column per seed.

    Used as the metric of ``bootstrap_ci``, which resamples rows (test samples) and keeps every
    seed's prediction of a sample together.
    """
    return float(np.mean(predictions == np.asarray(y_true)[:, None]))


def inference_rate(head, inputs, repeats=5):
    """Samples per second of ``head.predict`` (batch size 256), warm: median of ``repeats``."""
    n = len(inputs["mask"])
    with quiet_tf_data():
        head.predict(inputs, batch_size=256, verbose=0)  # warm-up: traces the predict function
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            head.predict(inputs, batch_size=256, verbose=0)
            times.append(time.perf_counter() - start)
    return n / float(np.median(times))


def measure(name, feats, train, test, frame, seeds, args):
    heads = train_fusion_heads(feats["train"], train["label"], train["mask"], name, seeds,
                               epochs=args.epochs, batch_size=64,
                               modality_dropout=args.modality_dropout)
    y = test["label"]
    inputs = {**feats["test"], "mask": test["mask"].astype("float32")}
    sarcastic = frame["sarcastic"].to_numpy() == 1
    incomplete = ~test["mask"].all(axis=1)  # at least one modality missing
    predictions, accuracy, f1, on_sarcastic, on_incomplete = [], [], [], [], []
    for head in heads["models"]:
        with quiet_tf_data():
            proba = np.asarray(head.predict(inputs, batch_size=256, verbose=0))[:, 0]
        pred = (proba > 0.5).astype(int)  # every head has one sigmoid output (two classes)
        correct = pred == y
        predictions.append(pred)
        accuracy.append(correct.mean())
        f1.append(f1_score(y, pred, average="macro"))
        # nan when a subset is empty (e.g. a dataset generated with missing_rate=0)
        on_sarcastic.append(correct[sarcastic].mean() if sarcastic.any() else np.nan)
        on_incomplete.append(correct[incomplete].mean() if incomplete.any() else np.nan)
    predictions = np.stack(predictions, axis=1)  # (n_test, seeds)
    point, low, high = bootstrap_ci(seed_mean_accuracy, y, predictions, n_boot=N_BOOT, seed=0)
    return {
        "fusion": name, "accuracy": np.array(accuracy), "ci": (point, low, high),
        "f1": np.array(f1), "sarcastic": np.array(on_sarcastic),
        "incomplete": np.array(on_incomplete), "params": heads["params"],
        "s/epoch": float(np.mean(heads["seconds_per_epoch"])),
        "samples/s": inference_rate(heads["models"][0], inputs),
        "n_sarcastic": int(sarcastic.sum()), "n_incomplete": int(incomplete.sum()),
    }


def mean_sd(values):
    if len(values) < 2:
        return f"{values.mean():.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def markdown_table(rows):
    header = ["fusion", "accuracy [95 % CI]", "macro F1", "sarcastic", "≥1 missing",
              "params", "s/epoch", "inference samples/s"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in rows:
        _, low, high = r["ci"]  # the point is the mean accuracy shown before it
        cells = [
            r["fusion"],
            f"{mean_sd(r['accuracy'])} [{low:.3f}, {high:.3f}]",
            mean_sd(r["f1"]), mean_sd(r["sarcastic"]), mean_sd(r["incomplete"]),
            f"{r['params']:,}", f"{r['s/epoch']:.3f}", f"{r['samples/s']:,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    seeds = list(range(args.seeds))

    log("extracting and standardising features")
    dataset, train, val, test, frames = load_features()
    log("pretraining the encoders on their unimodal tasks")
    t0 = time.perf_counter()
    encoders, report = pretrained_encoders(train, frames["train"], (val, frames["val"]))
    pretrain_seconds = time.perf_counter() - t0

    # Encode every split once: pooled vectors for most heads, sequences for attention fusion.
    pooled, sequences = {}, {}
    for split_name, split in (("train", train), ("test", test)):
        outputs = {m: encode(encoders[m], split[m]) for m in MODALITIES}
        pooled[split_name] = {m: out[0] for m, out in outputs.items()}
        sequences[split_name] = {m: out[1] for m, out in outputs.items()}

    rows = []
    for name in args.fusions:
        log(f"training {args.seeds} '{name}' head(s), {args.epochs} epochs each")
        feats = sequences if name == "attention" else pooled
        rows.append(measure(name, feats, train, test, frames["test"], seeds, args))
    wall = time.perf_counter() - start

    # The report: context first, then the table.
    ceilings = dataset.info["ceilings"]
    print(f"# Fusion methods on frozen encoder features ({dt.date.today().isoformat()})\n")
    print(f"- dataset: {dataset.info.get('name', 'spoken reviews')}, {len(dataset)} samples "
          f"(train {len(train['label'])}, test {len(test['label'])}: "
          f"{rows[0]['n_sarcastic']} sarcastic, {rows[0]['n_incomplete']} with a modality "
          f"missing), {dataset.root}")
    print(f"- fused Bayes ceiling (all three modalities): {ceilings['all']:.3f}; "
          f"best single modality: {max(ceilings[m] for m in MODALITIES):.3f}")
    # The Bayes-optimal rule, which sees the hidden factors, on the same test samples: the
    # reference for each column (the subsets are small, so their ceilings move with the sample).
    bayes = bayes_predict(frames["test"], **dataset.info["knobs"]) == test["label"]
    sarcastic = frames["test"]["sarcastic"].to_numpy() == 1
    incomplete = ~test["mask"].all(axis=1)
    print(f"- Bayes-optimal rule on these test samples: all {bayes.mean():.3f}, sarcastic "
          f"{bayes[sarcastic].mean():.3f}, ≥1 missing {bayes[incomplete].mean():.3f}")
    print(f"- encoders (dim {DIM}) pretrained in {pretrain_seconds:.0f} s "
          "(mmtutor.runs.pretrain_encoders); validation accuracy on their unimodal tasks: "
          + ", ".join(f"{m} {r['val_accuracy']:.3f} ({r['epochs']} epochs)" for m, r in report.items()))
    print(f"- heads: seeds {seeds}, {args.epochs} epochs, batch size 64, modality dropout "
          f"{args.modality_dropout}")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
          f"cores, {platform.platform()}, Keras {keras.__version__} "
          f"({keras.backend.backend()}), mmtutor {mmtutor.__version__}")
    print(f"- total wall time: {wall:.0f} s\n")
    print("Accuracy, macro F1, sarcastic and ≥1 missing: mean ± sd over seeds. The 95 % CI is a "
          f"percentile bootstrap ({N_BOOT} resamples of the test samples, "
          "mmtutor.metrics.bootstrap_ci) of the seed-mean accuracy, on the pooled predictions "
          "of all seeds. s/epoch: mean over seeds, first-epoch tracing included. Inference: "
          "seed-0 head, head.predict on the test features, batch size 256, warm, median of 5.\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
