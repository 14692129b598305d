"""Intensity windows map physical values to [-1, 1] and back."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from latent_transforms import ConfigError, IntensityWindow

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@given(low=finite, width=st.floats(1e-2, 1e4), values=st.lists(finite, min_size=1, max_size=16))
def test_normalize_lands_in_unit_range_and_round_trips_inside_the_window(low, width, values):
    window = IntensityWindow(low, low + width)
    x = torch.tensor(values, dtype=torch.float64)
    y = window.normalize(x)
    assert y.min() >= -1 - 1e-9 and y.max() <= 1 + 1e-9
    inside = x.clamp(window.low, window.high)
    torch.testing.assert_close(window.denormalize(y), inside, atol=1e-6 * max(1.0, width), rtol=1e-9)


def test_paper_ct_window():
    ct = IntensityWindow(-1000, 2000, "HU")
    torch.testing.assert_close(
        ct.normalize(torch.tensor([-1000.0, 500.0, 2000.0])), torch.tensor([-1.0, 0.0, 1.0])
    )
    assert ct.normalize(torch.tensor([0], dtype=torch.int16)).dtype == torch.float32


@pytest.mark.parametrize(("low", "high"), [(1.0, 1.0), (2.0, 1.0), (float("nan"), 1.0), (0.0, float("inf"))])
def test_invalid_windows_are_refused(low, high):
    with pytest.raises(ConfigError, match="low < high"):
        IntensityWindow(low, high)


def test_dict_round_trip():
    w = IntensityWindow(0, 1900, "a.u.")
    assert IntensityWindow.from_dict(w.to_dict()) == w
