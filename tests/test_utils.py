import numpy as np
import pytest

import mmtutor
from mmtutor.utils import environment_report, format_report, global_seed, glue, set_seed


def test_version_check():
    assert mmtutor.check_version(mmtutor.__version__) == mmtutor.__version__
    with pytest.raises(RuntimeError, match="written for mmtutor 0.0.1"):
        mmtutor.check_version("0.0.1")
    with pytest.raises(TypeError):
        mmtutor.check_version(1)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        set_seed(bad)


def test_set_seed_makes_numpy_and_keras_repeatable():
    import keras

    def draw():
        layer = keras.layers.Dense(4)
        layer.build((None, 3))
        noise = keras.ops.convert_to_numpy(keras.random.normal((2,)))
        return np.random.rand(3), noise, keras.ops.convert_to_numpy(layer.kernel)

    set_seed(123)
    a = draw()
    set_seed(123)
    b = draw()
    set_seed(124)
    c = draw()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])


def test_set_seed_makes_training_repeatable():
    import keras

    x = np.random.default_rng(0).normal(size=(64, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")

    def train():
        set_seed(7)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dropout(0.3), keras.layers.Dense(1, activation="sigmoid")])
        model.compile("adam", "binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)
        return model.predict(x, verbose=0)

    np.testing.assert_array_equal(train(), train())


def test_environment_report():
    report = environment_report()
    assert report["keras_backend"] == "tensorflow"
    assert "CPU:0" in report["devices"]
    assert report["gpu"] is False or any(d.startswith("GPU") for d in report["devices"])
    assert report["packages"]["mmtutor"] == mmtutor.__version__
    assert report["packages"]["keras"] == "3.15.1"
    text = format_report(report)
    assert "keras backend" in text and "tensorflow" in text


def test_import_keeps_tensorflow_banner_out(tmp_path):
    """`import mmtutor` must not let TensorFlow's start-up banner reach stderr."""
    import subprocess
    import sys

    code = "import mmtutor, keras; print(keras.backend.backend())"
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tensorflow"
    assert "oneDNN" not in out.stderr and "absl::InitializeLog" not in out.stderr, out.stderr


def test_interactive_session_keeps_retracing_hints_out():
    """In a notebook kernel TensorFlow logs at INFO to stdout; mmtutor keeps only its errors."""
    import subprocess
    import sys

    # sys.ps1 is what makes TensorFlow treat the session as interactive, as in a kernel.
    code = (
        "import sys; sys.ps1 = '>>> '\n"
        "import logging, mmtutor, keras, numpy as np\n"
        "for n in range(2, 10):\n"
        "    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])\n"
        "    m.predict(np.zeros((n, 3)), verbose=0)\n"
        "print('level', logging.getLogger('tensorflow').level)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "level 40" in out.stdout, out.stdout
    assert "retracing" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_quiet_tf_data_passes_other_lines_through(capfd):
    import os

    from mmtutor.utils import quiet_tf_data

    with quiet_tf_data() as real:
        os.write(2, b"W tensorflow NodeDef mentions attribute use_unbounded_threadpool\nreal problem\n")
        real.write("progress\n")
    err = capfd.readouterr().err
    assert "real problem" in err and "progress" in err
    assert "use_unbounded_threadpool" not in err


# ------------------------------------------------------------------ the global seed knob


def test_global_seed_defaults_to_zero_and_honours_the_variable(monkeypatch):
    monkeypatch.delenv("MMTUTOR_SEED", raising=False)
    assert global_seed() == 0 and global_seed(2) == 2
    monkeypatch.setenv("MMTUTOR_SEED", "7")
    assert global_seed() == 7 and global_seed(2) == 9
    monkeypatch.setenv("MMTUTOR_SEED", " 3 ")
    assert global_seed() == 3
    monkeypatch.setenv("MMTUTOR_SEED", "")
    assert global_seed() == 0


@pytest.mark.parametrize("raw", ["-1", "1.5", "one", "1e3", "²"])
def test_global_seed_names_the_variable_when_it_is_bad(monkeypatch, raw):
    monkeypatch.setenv("MMTUTOR_SEED", raw)
    with pytest.raises(ValueError, match=r"MMTUTOR_SEED must be a non-negative integer, got"):
        global_seed()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_global_seed_rejects_a_bad_offset(bad):
    with pytest.raises(ValueError, match="offset must be a non-negative integer"):
        global_seed(bad)


def test_set_seed_none_takes_the_global_seed(monkeypatch):
    monkeypatch.setenv("MMTUTOR_SEED", "5")
    assert set_seed() == 5
    a = np.random.rand(3)
    set_seed(5)
    np.testing.assert_array_equal(a, np.random.rand(3))


def test_train_run_and_the_cli_default_to_the_global_seed(monkeypatch):
    import inspect

    from mmtutor import cli
    from mmtutor.runs import RunConfig

    assert inspect.signature(RunConfig).parameters["seed"].default is None
    assert cli.build_parser().parse_args(["train", "--out", "x"]).seed is None


# ------------------------------------------------------------------ glue


def test_glue_returns_the_value_and_stores_nothing_outside_a_kernel(capsys):
    value = np.float64(0.91234)
    assert glue("ch0_acc", value, ".3f") is value
    assert glue("ch0_n", 55, "d") == 55
    assert capsys.readouterr().out == ""


def test_glue_in_a_kernel_stores_the_formatted_text(monkeypatch):
    import IPython
    import myst_nb

    stored = {}
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(myst_nb, "glue", lambda name, text, display: stored.update({name: (text, display)}))
    glue("ch0_acc", np.float32(0.91234), ".3f")
    glue("ch0_share", 0.25, ".0%")
    glue("ch0_count", np.int64(2300097), ",d")
    glue("ch0_word", "late")
    assert stored == {"ch0_acc": ("0.912", False), "ch0_share": ("25%", False),
                      "ch0_count": ("2,300,097", False), "ch0_word": ("late", False)}


@pytest.mark.parametrize("name", ["", "a b", "x.y", None, 3])
def test_glue_rejects_a_bad_name(name):
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        glue(name, 1.0)


def test_glue_names_the_key_when_the_format_does_not_apply():
    with pytest.raises(ValueError, match=r"fmt='d' does not apply to 'ch0_acc'"):
        glue("ch0_acc", 0.5, "d")
