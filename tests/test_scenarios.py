"""Tests for mmtutor.data.scenarios: determinism, shapes, designed shares, ceilings, validation."""

import numpy as np
import pytest

from mmtutor.data.scenarios import (
    CONDITIONS,
    DRIVING_CLASSES,
    HCI_VOCAB,
    SENSORS,
    driving_ceilings,
    driving_sensor_estimates,
    fit_sensor_model,
    gaussian_fusion_log_posterior,
    hci_ceilings,
    latency_ms,
    make_driving,
    make_hci,
    make_medical,
    medical_ceilings,
)

MAKERS = {"medical": make_medical, "driving": make_driving, "hci": make_hci}


@pytest.fixture(scope="module")
def medical():
    return make_medical(500, seed=3)


@pytest.fixture(scope="module")
def driving():
    return make_driving(400, seed=3)


@pytest.fixture(scope="module")
def hci():
    return make_hci(600, seed=3)


def _same(a, b):
    for split in ("train", "val", "test"):
        sa, sb = a.split(split), b.split(split)
        assert sa.x.keys() == sb.x.keys()
        for k in sa.x:
            np.testing.assert_array_equal(sa.x[k], sb.x[k])
        np.testing.assert_array_equal(sa.y, sb.y)
        for k in sa.factors:
            np.testing.assert_array_equal(sa.factors[k], sb.factors[k])


@pytest.mark.parametrize("name", MAKERS)
def test_same_seed_same_arrays_other_seed_other_arrays(name):
    make = MAKERS[name]
    _same(make(200, seed=5), make(200, seed=5))
    a, b = make(200, seed=5), make(200, seed=6)
    key = a.modalities[0]
    assert not np.array_equal(a.train.x[key], b.train.x[key])


@pytest.mark.parametrize("name", MAKERS)
def test_split_sizes_and_label_range(name):
    data = MAKERS[name](500, seed=1)
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [300, 100, 100]
    for s in ("train", "val", "test"):
        split = data.split(s)
        assert split.y.dtype == np.int64
        assert set(np.unique(split.y)) <= set(range(len(data.classes)))
        assert all(len(v) == len(split.y) for v in split.x.values())


def test_medical_shapes_rarity_and_missing_lab(medical):
    for s in ("train", "val", "test"):
        split = medical.split(s)
        assert split.x["image"].shape[1:] == (32, 32, 1) and split.x["image"].dtype == np.float32
        assert 0.0 <= split.x["image"].min() and split.x["image"].max() <= 1.0
        assert split.x["labs"].shape[1:] == (4,) and split.x["labs"].dtype == np.float32
        assert split.y.mean() == pytest.approx(0.08, abs=0.01)  # the same rare share everywhere
        missing = np.isnan(split.x["labs"][:, 0])
        assert missing.mean() == pytest.approx(0.3, abs=0.01)
        np.testing.assert_array_equal(missing, split.factors["crp_missing"])
        assert not np.isnan(split.x["labs"][:, 1:]).any()


def test_medical_positive_lesions_have_more_contrast(medical):
    f, y = medical.train.factors["contrast"], medical.train.y
    assert f[y == 1].mean() - f[y == 0].mean() > 1.0


def test_medical_ceilings_exact_and_ordered():
    c = medical_ceilings()
    for key in ("image", "labs", "labs_missing", "all", "all_missing"):
        for metric in ("auroc", "sensitivity", "accuracy"):
            assert 0.0 <= c[key][metric] <= 1.0
    assert c["all"]["auroc"] > max(c["image"]["auroc"], c["labs"]["auroc"])
    assert c["labs"]["auroc"] > c["labs_missing"]["auroc"]
    assert c["labs_missing"]["auroc"] < c["labs_deployed"] < c["labs"]["auroc"]
    assert c["all_missing"]["auroc"] < c["all_deployed"] < c["all"]["auroc"]
    # Accuracy hardly beats "always negative" (0.92): why accuracy misleads on rare classes.
    assert c["all"]["accuracy"] >= 0.92
    assert medical_ceilings(missing_rate=0.0)["labs_deployed"] == pytest.approx(c["labs"]["auroc"])


def test_medical_auroc_ceiling_matches_a_large_sample():
    # The Bayes score for the image evidence alone is the contrast itself (monotone in the LLR).
    from mmtutor.metrics import roc_auc
    data = make_medical(20000, seed=0)
    y, contrast = data.train.y, data.train.factors["contrast"]
    assert roc_auc(y, contrast) == pytest.approx(medical_ceilings()["image"]["auroc"], abs=0.02)


def test_driving_shapes_and_balance(driving):
    x = driving.train.x
    assert x["camera"].shape[1:] == (8,) and x["lidar"].shape[1:] == (32, 3)
    assert x["radar"].shape[1:] == (4, 3)
    assert all(v.dtype == np.float32 for v in x.values())
    assert driving.classes == DRIVING_CLASSES
    cond = driving.train.factors["condition"]
    assert set(np.unique(cond)) == set(range(len(CONDITIONS)))
    counts = np.bincount(driving.train.y, minlength=3) / len(driving.train)
    assert np.all(np.abs(counts - 1 / 3) < 0.08)


def test_driving_noise_per_condition_as_designed(driving):
    sd = driving.info["noise_sd"]
    assert sd["camera"]["night"][0] > 2 * sd["camera"]["day"][0]
    assert sd["lidar"]["fog"][0] > 2 * sd["lidar"]["day"][0]
    assert sd["radar"]["fog"] == sd["radar"]["day"]


def test_driving_ceilings_in_range_and_above_each_sensor():
    c = driving_ceilings(n_mc=40_000)
    for key, row in c.items():
        assert all(0.0 <= v <= 1.0 for v in row.values()), key
    for cond in (*CONDITIONS, "mean"):
        assert c["all"][cond] > max(c[s][cond] for s in SENSORS) - 0.005
        assert c["all"][cond] >= c["fixed"][cond] - 0.01  # the Bayes rule beats fixed weights
    assert c["camera"]["night"] < c["camera"]["day"] - 0.2
    assert c["lidar"]["fog"] < c["lidar"]["day"] - 0.2


def test_driving_estimates_recover_the_readings(driving):
    est = driving_sensor_estimates(driving.test.x)
    for s in SENSORS:
        err = np.abs(est[s] - driving.test.factors[f"reading_{s}"]).mean()
        assert err < 0.3, s
    cond = driving.test.factors["condition"]
    logp = gaussian_fusion_log_posterior(est, cond)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-9)
    assert (logp.argmax(1) == driving.test.y).mean() > 0.8


def test_hci_shapes_conflicts_and_vocab(hci):
    x = hci.train.x
    assert x["voice"].shape[1:] == (32, 16) and x["voice"].dtype == np.float32
    assert x["text"].shape[1:] == (10,) and x["text"].dtype == np.int32
    assert x["face"].shape[1:] == (20,)
    assert x["text"].min() >= 0 and x["text"].max() <= len(HCI_VOCAB)
    conflict = hci.train.factors["conflict"]
    assert conflict.mean() == pytest.approx(0.15, abs=0.05)
    assert np.all(hci.train.y[conflict] == 2)  # conflicts are frustrated ...
    assert np.all(hci.train.factors["cue_text"][conflict] == 0)  # ... in polite words


def test_hci_ceilings_in_range_and_fusion_above_each_modality():
    c = hci_ceilings()
    assert all(0.0 <= v <= 1.0 for v in c.values())
    assert c["voice+text+face"] > max(c["voice"], c["text"], c["face"])
    # Without conflicts, a modality's ceiling is its reliability.
    assert hci_ceilings(conflict_rate=0.0)["text"] == pytest.approx(0.8)
    assert hci_ceilings(conflict_rate=0.0)["voice"] == pytest.approx(0.75)


def test_hci_ceiling_matches_the_data():
    data = make_hci(20000, seed=0)
    s = data.train
    # The text's cue is right on about its ceiling's share of the requests.
    assert np.mean(s.factors["cue_text"] == s.y) == pytest.approx(hci_ceilings()["text"], abs=0.02)


@pytest.mark.parametrize("name", MAKERS)
def test_wrong_types_raise_type_error(name):
    with pytest.raises(TypeError, match="n must be an int"):
        MAKERS[name](300.0)
    with pytest.raises(TypeError, match="seed"):
        MAKERS[name](300, seed="0")


@pytest.mark.parametrize("name", MAKERS)
def test_bad_values_raise_value_error(name):
    with pytest.raises(ValueError, match="n must be >= 100"):
        MAKERS[name](10)
    with pytest.raises(ValueError, match="seed"):
        MAKERS[name](300, seed=-1)


def test_bad_knobs_name_the_argument():
    with pytest.raises(ValueError, match="prevalence"):
        make_medical(300, prevalence=0.0)
    with pytest.raises(ValueError, match="missing_rate"):
        make_medical(300, missing_rate=1.5)
    with pytest.raises(TypeError, match="image_size"):
        make_medical(300, image_size="32")
    with pytest.raises(ValueError, match="num_points"):
        make_driving(300, num_points=2)
    with pytest.raises(ValueError, match="conflict_rate"):
        make_hci(300, conflict_rate=0.5)
    with pytest.raises(TypeError, match="reliability"):
        make_hci(300, reliability=0.8)
    with pytest.raises(ValueError, match="unknown modalities"):
        make_hci(300, reliability={"smell": 0.9})
    with pytest.raises(ValueError, match="weights"):
        gaussian_fusion_log_posterior({}, np.zeros(0, int), weights="night")
    with pytest.raises(ValueError, match="sensors"):
        gaussian_fusion_log_posterior({}, np.zeros(0, int), sensors=("sonar",))


def test_fit_sensor_model_recovers_the_generator():
    data = make_driving(4000, seed=1)
    s = data.train
    cond = s.factors["condition"]
    latent = {k: s.factors[f"reading_{k}"] for k in SENSORS}
    fitted = fit_sensor_model(latent, s.y, cond)
    for k in SENSORS:
        np.testing.assert_allclose(fitted["means"][k], data.info["prototypes"][k], atol=0.35)
        true_sd = np.array([data.info["noise_sd"][k][c] for c in CONDITIONS])
        np.testing.assert_allclose(fitted["sd"][k], true_sd, rtol=0.15)
    pooled = fit_sensor_model(latent, s.y, cond, per_condition=False)
    assert not pooled["per_condition"]
    for k in SENSORS:
        assert np.all(pooled["sd"][k] == pooled["sd"][k][0])  # one variance in every condition


def test_fitted_rule_is_about_as_good_as_the_true_one_and_beats_fixed_weights():
    data = make_driving(4000, seed=2)
    est = {name: driving_sensor_estimates(data.split(name).x) for name in ("train", "test")}
    train, test = data.train, data.test
    cond = test.factors["condition"]
    fitted = fit_sensor_model(est["train"], train.y, train.factors["condition"])
    pooled = fit_sensor_model(est["train"], train.y, train.factors["condition"], per_condition=False)
    acc = lambda **kw: (gaussian_fusion_log_posterior(est["test"], cond, **kw).argmax(1) == test.y).mean()
    assert acc(model=fitted) > acc() - 0.02
    assert acc(model=fitted) > acc(model=pooled) + 0.01
    logp = gaussian_fusion_log_posterior(est["test"], cond, model=fitted, sensors=("radar",))
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-9)


def test_fit_sensor_model_bad_arguments():
    data = make_driving(200, seed=0)
    s = data.train
    est = driving_sensor_estimates(s.x)
    cond = s.factors["condition"]
    with pytest.raises(ValueError, match="same length"):
        fit_sensor_model(est, s.y[:-1], cond)
    with pytest.raises(TypeError, match="per_condition"):
        fit_sensor_model(est, s.y, cond, per_condition="yes")
    with pytest.raises(ValueError, match="missing 'lidar'"):
        fit_sensor_model({"camera": est["camera"], "radar": est["radar"]}, s.y, cond)
    with pytest.raises(ValueError, match="at least two"):
        fit_sensor_model({k: v[:3] for k, v in est.items()}, np.array([0, 1, 2]), cond[:3])
    with pytest.raises(TypeError, match="fit_sensor_model"):
        gaussian_fusion_log_posterior(est, cond, model={"means": {}})
    bad = fit_sensor_model(est, s.y, cond)
    bad["sd"]["camera"] = bad["sd"]["camera"][:2]
    with pytest.raises(ValueError, match="expected"):
        gaussian_fusion_log_posterior(est, cond, model=bad)


def test_latency_ms_times_each_call():
    calls = []
    times = latency_ms(calls.append, [1, 2, 3], repeats=7, warmup=2)
    assert times.shape == (7,) and np.all(times >= 0)
    assert calls == [1, 2, 1, 2, 3, 1, 2, 3, 1]  # warm-up calls first, then the timed ones
    with pytest.raises(TypeError, match="callable"):
        latency_ms(3, [1])
    with pytest.raises(ValueError, match="empty"):
        latency_ms(print, [])
    with pytest.raises(ValueError, match="repeats"):
        latency_ms(print, [1], repeats=0)
