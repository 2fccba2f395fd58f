"""Tests of mmtutor.compare: fusion heads on frozen features, subsets, probes."""

import os

import keras
import numpy as np
import pytest

from mmtutor.compare import (
    drop_modality,
    encode,
    evaluate_subsets,
    feature_encoders,
    linear_probe,
    train_fusion_heads,
)

MODS = ["a", "b"]


def xor_task(n=256, seed=0):
    """Label = XOR of a bit seen only by modality a and a bit seen only by modality b."""
    rng = np.random.default_rng(seed)
    bit_a, bit_b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    feats = {
        "a": np.eye(2)[bit_a] + 0.05 * rng.normal(size=(n, 2)),
        "b": np.eye(2)[bit_b] + 0.05 * rng.normal(size=(n, 2)),
    }
    return feats, (bit_a ^ bit_b).astype(int), bit_a, bit_b


def test_encode_returns_pooled_and_sequence():
    inp = keras.Input((4, 3))
    seq = keras.layers.Dense(5)(inp)
    pooled = keras.layers.GlobalAveragePooling1D()(seq)
    enc = keras.Model(inp, [pooled, seq])
    x = np.random.default_rng(0).normal(size=(7, 4, 3)).astype("float32")
    p, s = encode(enc, x, batch_size=3)
    assert p.shape == (7, 5) and s.shape == (7, 4, 5)
    np.testing.assert_allclose(p, s.mean(axis=1), atol=1e-5)


def test_encode_rejects_wrong_shape():
    inp = keras.Input((3,))
    enc = keras.Model(inp, keras.layers.Dense(2)(inp), name="enc")
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\).*'enc'.*\(4, 5\)"):
        encode(enc, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="encoder must be a keras.Model"):
        encode("enc", np.zeros((4, 3)))


def test_feature_encoders_pass_features_through():
    feats = {"text": np.arange(12.0).reshape(3, 4), "audio": np.ones((3, 2, 5))}
    encs = feature_encoders(feats)
    assert [e.name for e in encs.values()] == ["text_features", "audio_features"]
    np.testing.assert_allclose(encs["text"].predict(feats["text"], verbose=0), feats["text"])
    assert tuple(encs["audio"].outputs[0].shape) == (None, 2, 5)


@pytest.mark.parametrize("bad, match", [
    ({}, "non-empty dict"),
    ({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))}, "same number of rows"),
    ({"a": np.zeros(3)}, r"shape \(n, dim\)"),
    ({"mask": np.zeros((3, 2))}, "modality names"),
])
def test_feature_encoders_validate(bad, match):
    with pytest.raises(ValueError, match=match):
        feature_encoders(bad)


def test_drop_modality():
    mask = np.array([[1, 1, 0], [1, 0, 1]], dtype=bool)
    out = drop_modality(mask, ["t", "i", "a"], ["t", "a"])
    np.testing.assert_array_equal(out, [[0, 1, 0], [0, 0, 0]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(mask, [[1, 1, 0], [1, 0, 1]])  # input untouched
    with pytest.raises(ValueError, match=r"drop must name some of the modalities.*'video'"):
        drop_modality(mask, ["t", "i", "a"], "video")
    with pytest.raises(ValueError, match=r"masks must have shape \(n, 2\)"):
        drop_modality(mask, ["t", "i"], "t")


def test_heads_learn_xor_except_late_fusion():
    """Concat learns the XOR of two modalities; late fusion (per-modality decisions) cannot."""
    feats, y, _, _ = xor_task()
    test_feats, y_test, _, _ = xor_task(seed=1)
    mask = np.ones((len(y), 2))
    scores = {}
    for name in ("concat", "late"):
        heads = train_fusion_heads(feats, y, mask, name, seeds=[0], epochs=60, batch_size=32,
                                   lr=1e-2)
        scores[name] = evaluate_subsets(heads["models"][0], test_feats, y_test,
                                        np.ones((len(y_test), 2)))["all"]
    assert scores["concat"] > 0.95
    assert scores["late"] < 0.7


def test_train_fusion_heads_reports_params_and_time():
    feats, y, _, _ = xor_task(64)
    out = train_fusion_heads(feats, y, np.ones((64, 2)), "tensor", seeds=[0, 1], epochs=2)
    assert len(out["models"]) == 2 and out["seconds_per_epoch"].shape == (2,)
    assert np.all(out["seconds_per_epoch"] > 0)
    # TFN on two 2-d features: (2+1)*(2+1) = 9 fused features, no weights of its own.
    assert out["fusion_params"] == 0
    head = out["models"][0]
    expected = sum(int(np.prod(w.shape)) for w in head.trainable_weights)
    assert out["params"] == expected
    assert head.get_layer("hidden").kernel.shape == (9, 64)


def test_train_fusion_heads_seeds_reproducible_and_distinct():
    feats, y, _, _ = xor_task(64)
    mask = np.ones((64, 2))
    a = train_fusion_heads(feats, y, mask, "concat", seeds=[3, 4], epochs=1)["models"]
    b = train_fusion_heads(feats, y, mask, "concat", seeds=[3], epochs=1)["models"]
    x = dict(feats, mask=mask)
    pa0, pa1 = (m.predict(x, verbose=0) for m in a)
    np.testing.assert_allclose(pa0, b[0].predict(x, verbose=0), atol=1e-6)
    assert not np.allclose(pa0, pa1)


def test_train_fusion_heads_accepts_layer_factory_and_sequences():
    from mmtutor.fusion import CrossModalAttentionFusion

    rng = np.random.default_rng(0)
    feats = {"a": rng.normal(size=(32, 4, 3)), "b": rng.normal(size=(32, 5, 2))}
    out = train_fusion_heads(
        feats, rng.integers(0, 2, 32), np.ones((32, 2)),
        lambda: CrossModalAttentionFusion(num_heads=2, key_dim=4, dim=8, name="fusion"),
        seeds=[0], epochs=1,
    )
    assert isinstance(out["models"][0].fusion_layer, CrossModalAttentionFusion)
    assert out["fusion_params"] > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels=np.zeros(5, int)), r"labels must have shape \(64,\)"),
    (dict(labels=np.full(64, 0.5)), "labels must be integers"),
    (dict(masks=np.ones((64, 3))), r"masks must have shape \(64, 2\)"),
    (dict(seeds=[]), "seeds must be a non-empty sequence"),
    (dict(seeds=3), "seeds must be a non-empty sequence"),
    (dict(fusion="sum"), "fusion must be a layer or one of"),
    (dict(fusion=3), "fusion must be a fusion name"),
    (dict(epochs=0), "epochs must be an integer >= 1"),
])
def test_train_fusion_heads_validates(kwargs, match):
    feats, y, _, _ = xor_task(64)
    args = dict(labels=y, masks=np.ones((64, 2)), fusion="concat", seeds=[0], epochs=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_fusion_heads(feats, args.pop("labels"), args.pop("masks"), args.pop("fusion"),
                           **args)


def test_evaluate_subsets_counts_correct_predictions_and_drops_modalities():
    # Label = bit of modality a; b is noise. A concat head learns to read a.
    feats, _, bit_a, _ = xor_task(128)
    mask = np.ones((128, 2))
    head = train_fusion_heads(feats, bit_a, mask, "concat", seeds=[0], epochs=40,
                              batch_size=32, lr=1e-2)["models"][0]
    subset = bit_a == 1
    res = evaluate_subsets(head, feats, bit_a, mask, subsets={"ones": subset})
    pred = (head.predict(dict(feats, mask=mask), verbose=0)[:, 0] > 0.5).astype(int)
    assert res["all"] == pytest.approx(np.mean(pred == bit_a))
    assert res["ones"] == pytest.approx(np.mean(pred[subset] == 1))
    assert res["all"] > 0.95
    # Without a, the head has no information about the label; without b, it still reads a.
    assert res["without a"] < 0.7
    assert res["without b"] > 0.9
    assert set(res) == {"all", "ones", "without a", "without b"}


def test_evaluate_subsets_validates():
    feats, y, _, _ = xor_task(32)
    head = train_fusion_heads(feats, y, np.ones((32, 2)), "concat", seeds=[0],
                              epochs=1)["models"][0]
    mask = np.ones((32, 2))
    with pytest.raises(ValueError, match=r"subsets\['s'\] must be a boolean array"):
        evaluate_subsets(head, feats, y, mask, subsets={"s": np.zeros(32, bool)})
    with pytest.raises(ValueError, match=r"subsets\['s'\] must have shape \(32,\)"):
        evaluate_subsets(head, feats, y, mask, subsets={"s": np.ones(3, bool)})
    with pytest.raises(ValueError, match="features must have the model's modalities"):
        evaluate_subsets(head, {"a": feats["a"]}, y, mask)
    with pytest.raises(ValueError, match="fusion model from build_fusion_model"):
        evaluate_subsets(object(), feats, y, mask)


def test_linear_probe_finds_a_linear_factor_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    z = rng.normal(size=(400, 5))
    z[:, 2] += 3.0 * y  # the factor is written along one direction
    res = linear_probe(z[:300], y[:300], z[300:], y[300:])
    assert res["accuracy"] > 0.9
    assert res["majority"] == pytest.approx(max(y[300:].mean(), 1 - y[300:].mean()))
    noise = linear_probe(rng.normal(size=(300, 5)), y[:300], rng.normal(size=(100, 5)),
                         y[300:])
    assert noise["accuracy"] < 0.7


def test_linear_probe_validates():
    z, y = np.zeros((10, 2)), np.r_[np.zeros(5, int), np.ones(5, int)]
    with pytest.raises(ValueError, match=r"y_train must have shape \(10,\)"):
        linear_probe(z, y[:4], z, y)
    with pytest.raises(ValueError, match="z_test contains NaN"):
        linear_probe(z, y, np.full((10, 2), np.nan), y)
    with pytest.raises(ValueError, match="at least two classes"):
        linear_probe(z, np.zeros(10, int), z, y)
    with pytest.raises(ValueError, match=r"z_train must have shape \(n, dim\)"):
        linear_probe(np.zeros(10), y, z, y)


def test_quiet_tf_data_drops_only_the_notice(capfd):
    from mmtutor.compare import quiet_tf_data

    with quiet_tf_data():
        os.write(2, b"E0000 NodeDef mentions attribute use_unbounded_threadpool ...\n")
        os.write(2, b"a real error\n")
    err = capfd.readouterr().err
    assert "use_unbounded_threadpool" not in err
    assert "a real error" in err
