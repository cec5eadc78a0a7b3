"""The procedural benchmark's presets."""
import numpy as np
import pytest

from mmseg_calsfda.datasets.synthetic import (
    HARD_SWAP,
    SHIFTS,
    C,
    make_sample,
    write_benchmark,
)


def _class_means(domain, shift, seeds=range(20)):
    sums, counts = np.zeros((19, 3)), np.zeros(19)
    for seed in seeds:
        img, label = make_sample(seed, 64, 128, domain, shift)
        for c in np.unique(label):
            sums[c] += img[label == c].reshape(-1, 3).sum(0)
            counts[c] += (label == c).sum()
    return sums / np.maximum(counts, 1)[:, None]


@pytest.mark.parametrize('cls', ['road', 'vegetation', 'person'])
def test_hard_target_classes_look_like_their_partners(cls):
    """A class-conditional shift: in 'hard' a target class is nearer its
    partner's source appearance than its own; in 'default' it is not."""
    partner = HARD_SWAP[cls]

    def distances(shift):
        src, tgt = _class_means('source', shift), _class_means(
            'target', shift)
        return (np.linalg.norm(tgt[C[cls]] - src[C[cls]]),
                np.linalg.norm(tgt[C[cls]] - src[C[partner]]))

    own, other = distances('hard')
    assert other < own
    own, other = distances('default')
    assert own < other


def test_presets_are_deterministic_and_distinct():
    assert SHIFTS == ('default', 'hard')
    a = make_sample(3, 64, 128, 'target', 'hard')
    b = make_sample(3, 64, 128, 'target', 'hard')
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    default = make_sample(3, 64, 128, 'target')
    assert not np.array_equal(a[0], default[0])
    # objects are drawn larger and denser in the hard target
    sky = [(make_sample(s, 64, 128, 'target', shift)[1] == C['sky']).mean()
           for shift in ('default', 'hard') for s in range(10)]
    assert np.mean(sky[10:]) < np.mean(sky[:10])


def test_unknown_preset_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"shift must be one of \('default',"
                       r" 'hard'\), got 'night'"):
        write_benchmark(str(tmp_path), shift='night')
