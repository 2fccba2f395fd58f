"""mmtutor._validation: one set of checkers, TypeError for a type, ValueError for a value."""

import numpy as np
import pytest

from mmtutor._validation import check_bool, check_choice, check_float, check_int, check_modalities


def test_check_int():
    assert check_int(np.int64(3), "epochs", minimum=1) == 3 and type(check_int(3, "x")) is int
    for bad in (1.0, "3", True, None):
        with pytest.raises(TypeError, match=r"epochs must be an integer, got"):
            check_int(bad, "epochs")
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, got 0"):
        check_int(0, "epochs", minimum=1)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 5\], got 6"):
        check_int(6, "k", minimum=1, maximum=5)
    with pytest.raises(ValueError, match=r"k must be an integer <= 5"):
        check_int(6, "k", maximum=5)


def test_check_float():
    assert check_float(1, "lr", low=0.0, high=1.0) == 1.0
    for bad in ("0.1", True, None, [0.1]):
        with pytest.raises(TypeError, match="lr must be a number"):
            check_float(bad, "lr")
    with pytest.raises(ValueError, match=r"lr must be a number in \(0.0, 1.0\], got 0.0"):
        check_float(0.0, "lr", low=0.0, high=1.0, low_open=True)
    with pytest.raises(ValueError, match=r"p must be a number in \[0.0, 1.0\), got 1.0"):
        check_float(1.0, "p", low=0.0, high=1.0, high_open=True)
    with pytest.raises(ValueError, match=r"x must be a number in \(-inf, inf\), got nan"):
        check_float(float("nan"), "x")


def test_check_choice_and_bool():
    assert check_choice("late", "fusion", ("concat", "late")) == "late"
    with pytest.raises(ValueError, match=r"fusion must be one of \['concat', 'late'\], got 'sum'"):
        check_choice("sum", "fusion", ("concat", "late"))
    with pytest.raises(ValueError, match="fusion must be one of"):
        check_choice(["concat"], "fusion", ("concat", "late"))
    assert check_bool(np.bool_(True), "flag") is True
    with pytest.raises(TypeError, match="flag must be True or False, got int 1"):
        check_bool(1, "flag")


def test_check_modalities_orders_and_refuses():
    assert check_modalities("audio, text") == ["text", "audio"]
    assert check_modalities(("image",)) == ["image"]
    for bad in ("", [], ["text", "text"], ["smell"]):
        with pytest.raises(ValueError, match="modalities must be distinct names from"):
            check_modalities(bad)
    with pytest.raises(TypeError, match="modalities must be a list of names"):
        check_modalities(3)
    with pytest.raises(TypeError, match="modalities must be a list of names"):
        check_modalities([1, 2])
