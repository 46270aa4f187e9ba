"""cnnlite._validation: one integer/bool rule and one wording for every argument check."""
import numpy as np
import pytest

from cnnlite import _validation as v
from cnnlite import initializers, optimizers
from cnnlite.layers import Dense, Dropout


@pytest.mark.parametrize("value, ok", [(3, True), (np.int64(3), True), (np.uint8(3), True), (True, False),
                                       (np.bool_(True), False), (3.0, False), ("3", False), (None, False)])
def test_is_int(value, ok):
    assert v.is_int(value) is ok


def test_messages_name_owner_argument_and_value():
    with pytest.raises(ValueError, match=r"^Dense: `units` must be a positive integer, received units=0$"):
        v.check_positive_int(0, "units", "Dense")
    with pytest.raises(ValueError, match=r"^fit: `epochs` must be a non-negative integer, received epochs=True$"):
        v.check_nonneg_int(True, "epochs", "fit")
    with pytest.raises(ValueError, match=r"^EarlyStopping: patience must be a non-negative integer, got -1$"):
        v.check_nonneg_int(-1, "patience", "EarlyStopping", plain=True)
    with pytest.raises(ValueError, match=r"`seed` must be None or a non-negative integer, received seed=-2"):
        v.check_optional_seed(-2, "X")
    with pytest.raises(ValueError, match=r"`flag` must be a bool, received flag=1"):
        v.check_bool(1, "flag", "X")
    with pytest.raises(ValueError, match=r"`k` must be an integer >= 3, received k=2"):
        v.check_int(2, "k", "X", minimum=3)


def test_values_come_back_as_python_objects():
    assert type(v.check_positive_int(np.int32(4), "n")) is int
    assert v.check_optional_seed(None, "X") is None
    assert v.check_bool(np.bool_(False), "b") is False


def test_the_modules_use_the_shared_checks():
    with pytest.raises(ValueError, match=r"Adam.set_iterations: `iterations` must be a non-negative integer"):
        optimizers.Adam().set_iterations(-1)
    with pytest.raises(ValueError, match=r"HeNormal: `seed` must be None or a non-negative integer, received seed=-1"):
        initializers.HeNormal(seed=-1)
    with pytest.raises(ValueError, match=r"Dropout: `seed` must be None or a non-negative integer"):
        Dropout(0.5, seed=True)
    with pytest.raises(ValueError, match=r"SGD: `nesterov` must be a bool, received nesterov='yes'"):
        optimizers.SGD(nesterov="yes")
    with pytest.raises(ValueError, match=r"Dense: `units` must be a positive integer, received units=2.0"):
        Dense(2.0)
