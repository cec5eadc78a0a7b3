"""The procedural benchmark's preset registry (the default preset; the
lab's presets are tested with the lab)."""
import numpy as np
import pytest

from mmseg_calsfda.datasets.synthetic import (
    LAYOUTS,
    SHIFTS,
    Shift,
    make_sample,
    register_shift,
    render,
    write_benchmark,
)


def test_unknown_preset_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"shift must be one of \('default',"
                       r".*\), got 'night'"):
        write_benchmark(str(tmp_path), shift='night')
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_registered_preset_is_accepted_by_name(monkeypatch):
    calls = []

    def flat(rng, label, domain):
        calls.append(domain)
        return np.zeros(label.shape + (3, ), np.uint8)

    monkeypatch.setitem(SHIFTS, 'flat', Shift(LAYOUTS, flat))
    img, label = make_sample(0, 32, 64, 'target', 'flat')
    assert calls == ['target'] and not img.any()
    # the layout draws come first, as in the default preset
    assert np.array_equal(label, make_sample(0, 32, 64, 'target')[1])
    assert SHIFTS['default'] == Shift(LAYOUTS, render)
    register_shift('flat', Shift(LAYOUTS, flat))  # replaced, not added
    assert list(SHIFTS).count('flat') == 1
