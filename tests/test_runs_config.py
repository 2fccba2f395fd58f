"""mmtutor.runs.RunConfig: every setting once, validated, stored and read back."""

import dataclasses
import json

import pytest

from mmtutor import cli
from mmtutor.runs import PRETRAIN_EPOCHS, RunConfig


def test_defaults_and_round_trip(monkeypatch):
    monkeypatch.delenv("MMTUTOR_SEED", raising=False)
    config = RunConfig()
    assert config.seed == 0 and config.modalities == ["text", "image", "audio"] and config.fusion == "concat"
    assert config.pretrain_epochs == PRETRAIN_EPOCHS and config.image_size == (32, 32)
    assert RunConfig.from_json(config.to_json()) == config
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_the_global_seed_is_recorded_when_the_config_is_made(monkeypatch):
    monkeypatch.setenv("MMTUTOR_SEED", "4")
    assert RunConfig().seed == 4 and RunConfig(seed=1).seed == 1


@pytest.mark.parametrize("kwargs, error, message", [
    ({"fusion": "sum"}, ValueError, "fusion must be one of"),
    ({"epochs": 0}, ValueError, "epochs must be an integer >= 1, got 0"),
    ({"epochs": 2.5}, TypeError, "epochs must be an integer"),
    ({"lr": 0}, ValueError, r"lr must be a number in \(0.0, 1.0\]"),
    ({"modality_dropout": 1.0}, ValueError, r"modality_dropout must be a number in \[0.0, 1.0\)"),
    ({"image_filters": "16"}, TypeError, "image_filters must be a sequence"),
    ({"image_filters": ()}, ValueError, "at least one"),
    ({"pretrain_epochs": {"smell": 2}}, ValueError, "unknown modalities"),
    ({"audio": 3}, TypeError, "audio must be a dict"),
    ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
])
def test_bad_settings_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        RunConfig(**kwargs)


def test_unknown_settings_are_errors():
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        RunConfig(epoch=3)
    with pytest.raises(TypeError, match=r"unknown run settings \['epoch'\]"):
        RunConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="must be JSON"):
        RunConfig.from_json("{not json")


def test_replace_validates_again():
    config = RunConfig(fusion="late")
    assert config.replace(epochs=3).epochs == 3 and config.epochs == 20
    with pytest.raises(ValueError, match="epochs"):
        config.replace(epochs=0)


def test_the_cli_flags_come_from_the_config():
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--out", "x"])
    flagged = [field.name for field, _ in RunConfig.flags()]
    assert all(getattr(args, name) is None for name in flagged)  # defaults stay in RunConfig
    assert cli._train_settings(args) == RunConfig()
    args = parser.parse_args(["train", "--out", "x", "--fusion", "gated", "--epochs", "3", "--modalities",
                              "audio,image", "--no-pretrain", "--no-class-weight", "--seq-len", "10"])
    config = cli._train_settings(args)
    assert (config.fusion, config.epochs, config.modalities, config.pretrain, config.class_weight, config.seq_len) \
        == ("gated", 3, ["image", "audio"], None, None, 10)


def test_the_cli_help_shows_the_config_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    assert f"(default {defaults['epochs']})" in text and "(default concat)" in text
    assert "(default text,image,audio)" in text


def test_a_bad_flag_value_is_a_cli_error(capsys):
    assert cli.main(["train", "--out", "x", "--epochs", "0"]) == 2
    assert "mmtutor: error: epochs must be an integer >= 1, got 0" in capsys.readouterr().err
