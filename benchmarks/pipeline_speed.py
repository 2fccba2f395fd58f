"""One sample at a time or in batches: how much faster is the batched input pipeline?

The course outline's first sketch of a multimodal pipeline is a Python loop: for each sample,
read its image with OpenCV, read its audio and compute the log-mel spectrogram with librosa,
vectorise its text, and call the model on that one sample. The book instead extracts the
features of a whole split at once (``mmtutor.preprocess.extract_features``: images read in
batches, one librosa call for the log-mels of 64 clips, one vectoriser call for all texts) and
runs ``model.predict`` on batches. This script times both ways, stage by stage, and checks that
they compute the same predictions (max abs difference < 1e-4). It also times training: one
epoch of ``fit`` with batch size 32 against a loop of ``train_on_batch`` calls on one sample each.

The model is a three-modality concat fusion model (``build_fusion_model`` on the default
``text_encoder``, ``image_encoder`` and ``audio_encoder``) at ``extract_features``' default
settings: 64x64 RGB images, 3 s of audio as 301 x 64 log-mel frames, 24 tokens. Its weights are
random (seeded): speed does not depend on them. The training timings run on the chosen split's
arrays, for speed only; the trained weights are thrown away. It is not part of ``make test``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/pipeline_speed.py
    .venv/bin/python benchmarks/pipeline_speed.py --split val --loop-samples 128

Every time is in milliseconds per sample, after a warm-up call, so that Keras' one-off graph
tracing is left out of both columns (the model's first call is reported separately).
"""

import argparse
import contextlib
import datetime as dt
import os
import platform
import sys
import time

import mmtutor  # first: keeps TensorFlow's start-up banner out of the output

# isort: split
import keras
import numpy as np

from mmtutor.compare import quiet_tf_data
from mmtutor.data import load_spoken_reviews
from mmtutor.models.encoders import audio_encoder, image_encoder, text_encoder
from mmtutor.models.fusion_model import build_fusion_model
from mmtutor.preprocess import (
    AUDIO_DEFAULTS,
    DB_FLOOR,
    TextVectorizer,
    extract_features,
    load_audio,
    load_image,
    load_images,
    log_mel,
    num_frames,
)
from mmtutor.utils import set_seed

IMAGE_SIZE = (64, 64)  # extract_features' defaults, so both ways compute the same arrays
SEQ_LEN = 24
PREDICT_BATCH = 128
FIT_BATCH = 32
TOLERANCE = 1e-4


def log(message):
    """Progress goes to stderr, so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time a per-sample Python loop against the batched pipeline; print a "
                    "Markdown table.")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"),
                        help="split to run on (default test)")
    parser.add_argument("--loop-samples", type=int, default=64,
                        help="samples for the slowest one-at-a-time loops: model.predict per "
                             "sample and train_on_batch per sample (default 64)")
    args = parser.parse_args(argv)
    if args.loop_samples < 2:
        parser.error("--loop-samples must be at least 2")
    return args


def build_model(vocab_size, audio_shape, seed=0):
    """The benchmark's model: a concat fusion of the three default encoders, seeded."""
    set_seed(seed)
    encoders = {
        "text": text_encoder(vocab_size, SEQ_LEN, name="text_encoder"),
        "image": image_encoder((*IMAGE_SIZE, 3), name="image_encoder"),
        "audio": audio_encoder(audio_shape, name="audio_encoder"),
    }
    return build_fusion_model(encoders, "concat", num_classes=2, seed=seed)


class Timer:
    """Accumulate the seconds spent in named stages: ``with timer("image"): ...``."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, stage):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


# ------------------------------------------------------------------------------------------
# The outline's way: one sample at a time
# ------------------------------------------------------------------------------------------

def one_sample(row, vectorizer, timer, audio_settings, frames):
    """Preprocess one sample as the outline does; returns the model inputs for a batch of 1."""
    present = row["mask"]
    with timer("image"):
        # OpenCV: decode, BGR -> RGB, resize, scale to [0, 1]; a missing image is all zeros.
        image = (load_image(row["image_path"], IMAGE_SIZE) if present[1]
                 else np.zeros((*IMAGE_SIZE, 3), np.float32))
    with timer("audio"):
        # soundfile/librosa: read 3 s of mono 16 kHz audio, then its log-mel spectrogram;
        # a missing audio is the log-mel of silence, as in extract_features.
        if present[2]:
            wave = load_audio(row["audio_path"], sr=audio_settings["sr"],
                              seconds=audio_settings["seconds"])
            spec = log_mel(wave, **{k: audio_settings[k]
                                    for k in ("sr", "n_fft", "hop_length", "n_mels")})
        else:
            spec = np.full((frames, audio_settings["n_mels"]), DB_FLOOR, np.float32)
    with timer("text"):
        ids = vectorizer.transform([row["text"]])  # (1, SEQ_LEN)
        if not present[0]:
            ids[:] = 0  # a missing text is padding only
    return {"text": ids, "image": image[None], "audio": spec[None],
            "mask": present[None].astype("float32")}


def per_sample_pipeline(model, rows, vectorizer, audio_settings, frames):
    """The loop over every sample: preprocess it, then ``model(x, training=False)``."""
    timer = Timer()
    outputs = []
    for row in rows:
        inputs = one_sample(row, vectorizer, timer, audio_settings, frames)
        with timer("model"):
            outputs.append(np.asarray(model(inputs, training=False))[0, 0])
    return np.array(outputs), timer.seconds


def per_sample_predict(model, rows, vectorizer, audio_settings, frames):
    """Seconds per sample of ``model.predict`` on one sample (the slow way the outline used)."""
    inputs = [one_sample(r, vectorizer, Timer(), audio_settings, frames) for r in rows]
    with quiet_tf_data():
        model.predict(inputs[0], verbose=0)  # warm-up
        start = time.perf_counter()
        for x in inputs:
            model.predict(x, verbose=0)
    return (time.perf_counter() - start) / len(inputs)


# ------------------------------------------------------------------------------------------
# The batched way
# ------------------------------------------------------------------------------------------

def batched_stages(split, vectorizer, audio_settings, batch_size=64):
    """Each preprocessing stage on the whole split, batched as ``extract_features`` does it."""
    seconds = {}
    image_paths = [str(p) for p in split.image_paths]
    audio_paths = [str(p) for p in split.audio_paths]
    start = time.perf_counter()
    load_images(image_paths, IMAGE_SIZE)  # OpenCV; the "" of a missing image gives zeros
    seconds["image"] = time.perf_counter() - start
    mel = {k: audio_settings[k] for k in ("sr", "n_fft", "hop_length", "n_mels")}
    start = time.perf_counter()
    for first in range(0, len(audio_paths), batch_size):
        batch = [p for p in audio_paths[first:first + batch_size] if p]
        waves = np.stack([load_audio(p, sr=audio_settings["sr"], seconds=audio_settings["seconds"])
                          for p in batch])
        log_mel(waves, **mel)  # one librosa call for the whole batch
    seconds["audio"] = time.perf_counter() - start
    start = time.perf_counter()
    vectorizer.transform(list(split.texts))  # one call for every text
    seconds["text"] = time.perf_counter() - start
    return seconds


# ------------------------------------------------------------------------------------------
# Training: one epoch of fit against train_on_batch on one sample at a time
# ------------------------------------------------------------------------------------------

def training_times(vocab_size, audio_shape, data, labels, loop_samples):
    """Seconds per sample of ``fit`` (batch 32, one epoch) and of per-sample train_on_batch."""
    n = len(labels)
    model = build_model(vocab_size, audio_shape)
    with quiet_tf_data():
        # Warm-up on a full batch and a last, shorter one: traces train_function for both.
        warm = FIT_BATCH + 1
        model.fit({k: v[:warm] for k, v in data.items()}, labels[:warm],
                  batch_size=FIT_BATCH, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(data, labels, batch_size=FIT_BATCH, epochs=1, verbose=0)
        fit_seconds = (time.perf_counter() - start) / n

    model = build_model(vocab_size, audio_shape)  # the same initial weights
    one = [({k: v[i:i + 1] for k, v in data.items()}, labels[i:i + 1]) for i in range(loop_samples + 1)]
    with quiet_tf_data():
        model.train_on_batch(*one[0])  # warm-up
        start = time.perf_counter()
        for x, y in one[1:]:
            model.train_on_batch(x, y)
        loop_seconds = (time.perf_counter() - start) / loop_samples
    return fit_seconds, loop_seconds


def markdown_table(rows):
    lines = ["| stage | one at a time, ms/sample | batched, ms/sample | ratio |",
             "|---|---:|---:|---:|"]
    for stage, loop_s, batch_s in rows:
        lines.append(f"| {stage} | {1e3 * loop_s:.2f} | {1e3 * batch_s:.2f} | "
                     f"{loop_s / batch_s:.1f}x |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    wall_start = time.perf_counter()
    dataset = load_spoken_reviews()
    split = dataset.subset(args.split)
    n = len(split)
    loop_samples = min(args.loop_samples, n - 1)
    # The vocabulary is fitted on the training texts, as extract_features does by default.
    vectorizer = TextVectorizer(seq_len=SEQ_LEN).fit(list(dataset.subset("train").texts))
    audio_settings = dict(AUDIO_DEFAULTS, seconds=float(dataset.info["audio_seconds"]))
    frames = num_frames(round(audio_settings["sr"] * audio_settings["seconds"]),
                        audio_settings["hop_length"])
    audio_shape = (frames, audio_settings["n_mels"])
    model = build_model(vectorizer.vocab_size, audio_shape)

    rows = [{"image_path": str(i), "audio_path": str(a), "text": t, "mask": m}
            for i, a, t, m in zip(split.image_paths, split.audio_paths, split.texts, split.masks)]

    # The model's first call traces and builds it: a one-off cost, kept out of both columns.
    first = one_sample(rows[0], vectorizer, Timer(), audio_settings, frames)
    start = time.perf_counter()
    model(first, training=False)
    first_call = time.perf_counter() - start

    log(f"one-at-a-time pipeline over the {n} {args.split} samples")
    loop_out, loop_s = per_sample_pipeline(model, rows, vectorizer, audio_settings, frames)
    log(f"model.predict on one sample at a time, {loop_samples} samples")
    predict_one = per_sample_predict(model, rows[:loop_samples], vectorizer, audio_settings, frames)

    log("batched pipeline: extract_features (no cache) + model.predict")
    batched_stages(split, vectorizer, audio_settings)  # warm-up (librosa's batched path, file cache)
    batch_s = batched_stages(split, vectorizer, audio_settings)
    start = time.perf_counter()
    feats = extract_features(split, image_size=IMAGE_SIZE, vectorizer=vectorizer,
                             audio=audio_settings)  # no cache_dir: really computed
    extract_seconds = time.perf_counter() - start
    data = {m: feats[m] for m in ("text", "image", "audio")}
    data["mask"] = feats["mask"].astype("float32")
    with quiet_tf_data():
        model.predict(data, batch_size=PREDICT_BATCH, verbose=0)  # warm-up
        start = time.perf_counter()
        batch_out = np.asarray(model.predict(data, batch_size=PREDICT_BATCH, verbose=0))[:, 0]
        predict_seconds = time.perf_counter() - start

    # Both ways must compute the same thing, or the comparison means nothing.
    diff = float(np.max(np.abs(loop_out - batch_out)))
    if not diff < TOLERANCE:
        raise SystemExit(f"the one-at-a-time and batched predictions differ by {diff:.2e} "
                         f"(tolerance {TOLERANCE:g}): the comparison is not fair")

    log(f"training: one epoch of fit (batch {FIT_BATCH}) vs train_on_batch on {loop_samples} "
        "samples one at a time")
    fit_one, train_one = training_times(vectorizer.vocab_size, audio_shape, data,
                                        feats["label"].astype("float32"), loop_samples)

    loop_pre = loop_s["image"] + loop_s["audio"] + loop_s["text"]
    table = [
        ("image: read + resize (OpenCV)", loop_s["image"] / n, batch_s["image"] / n),
        ("audio: read + log-mel (librosa)", loop_s["audio"] / n, batch_s["audio"] / n),
        ("text: vectorise", loop_s["text"] / n, batch_s["text"] / n),
        ("preprocessing total (batched: `extract_features`, no cache)", loop_pre / n,
         extract_seconds / n),
        ("model: `model(x)` per sample vs `predict(batch_size=128)`", loop_s["model"] / n,
         predict_seconds / n),
        (f"model: `predict` per sample ({loop_samples} samples) vs `predict(batch_size=128)`",
         predict_one, predict_seconds / n),
        ("**inference pipeline total** (loop with `model(x)`)", (loop_pre + loop_s["model"]) / n,
         (extract_seconds + predict_seconds) / n),
        ("**inference pipeline total** (loop with `predict`)", loop_pre / n + predict_one,
         (extract_seconds + predict_seconds) / n),
        ((f"training: `train_on_batch` per sample ({loop_samples} samples) vs one epoch of "
          f"`fit(batch_size={FIT_BATCH})`"), train_one, fit_one),
    ]

    print(f"# One sample at a time vs batched ({dt.date.today().isoformat()})\n")
    print(f"- data: {dataset.info.get('name', 'spoken reviews')}, split '{args.split}' "
          f"({n} samples; {int((~split.masks).any(axis=1).sum())} with a modality missing), "
          f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} images, {frames} x {audio_settings['n_mels']} "
          f"log-mel frames, {SEQ_LEN} tokens")
    print(f"- model: concat fusion of text_encoder (BiLSTM), image_encoder (CNN), audio_encoder "
          f"(CNN), {model.count_params():,} parameters; its first call (tracing) took "
          f"{first_call:.2f} s, left out of the table")
    print(f"- predictions of both ways agree: max abs difference {diff:.1e} (< {TOLERANCE:g}); "
          f"they range over [{batch_out.min():.3f}, {batch_out.max():.3f}]")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
          f"cores, {platform.platform()}, Keras {keras.__version__} "
          f"({keras.backend.backend()}), mmtutor {mmtutor.__version__}")
    print(f"- total wall time: {time.perf_counter() - wall_start:.0f} s\n")
    print("ms/sample after a warm-up call; ratio = one at a time / batched. The stage rows of the "
          "batched column time each stage alone, batched as extract_features does it.\n")
    print(markdown_table(table))


if __name__ == "__main__":
    main()
