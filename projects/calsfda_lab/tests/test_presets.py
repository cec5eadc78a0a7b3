"""The lab's class-conditional benchmark presets (calsfda_lab.presets)."""
import numpy as np
import pytest

from calsfda_lab.presets import HARD_SWAP
from mmseg_calsfda.datasets.synthetic import SHIFTS, C, make_sample


def _class_means(domain, shift, seeds=range(40)):
    sums, counts = np.zeros((19, 3)), np.zeros(19)
    for seed in seeds:
        img, label = make_sample(seed, 64, 128, domain, shift)
        for c in np.unique(label):
            sums[c] += img[label == c].reshape(-1, 3).sum(0)
            counts[c] += (label == c).sum()
    return sums / np.maximum(counts, 1)[:, None]


@pytest.mark.parametrize('cls', ['road', 'vegetation', 'person'])
def test_swap_target_classes_look_like_their_partners(cls):
    """A class-conditional shift: in 'swap' a target class is nearer its
    partner's source appearance than its own; in 'default' it is not."""
    partner = HARD_SWAP[cls]

    def distances(shift):
        src, tgt = _class_means('source', shift), _class_means(
            'target', shift)
        return (np.linalg.norm(tgt[C[cls]] - src[C[cls]]),
                np.linalg.norm(tgt[C[cls]] - src[C[partner]]))

    own, other = distances('swap')
    assert other < own
    own, other = distances('default')
    assert own < other


def _nearer_partner(shift, cls='road', seeds=range(100, 140)):
    """Per target image: is ``cls`` nearer its partner's mean source look
    than its own?"""
    src = _class_means('source', shift, range(40))
    own, partner = src[C[cls]], src[C[HARD_SWAP[cls]]]
    nearer = []
    for seed in seeds:
        img, label = make_sample(seed, 64, 128, 'target', shift)
        look = img[label == C[cls]].reshape(-1, 3).mean(0)
        nearer.append(np.linalg.norm(look - partner) <
                      np.linalg.norm(look - own))
    return np.mean(nearer)


def test_hard_shift_strength_varies_per_image():
    """'hard' draws the blend per image: some target images still look
    like the source, others like the partner; 'swap' shifts all of them."""
    hard = _nearer_partner('hard')
    assert 0.2 < hard < 0.8
    assert _nearer_partner('swap') > hard
    # 'below' caps the blend under one half: fewer images cross over
    # (measured: 0.225 against 0.425, as the lab's docs/findings.md says)
    assert _nearer_partner('below') < min(0.3, hard)


def test_presets_are_deterministic_and_distinct():
    assert list(SHIFTS) == ['default', 'swap', 'hard', 'below']
    a = make_sample(3, 64, 128, 'target', 'hard')
    b = make_sample(3, 64, 128, 'target', 'hard')
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    default = make_sample(3, 64, 128, 'target')
    assert not np.array_equal(a[0], default[0])
    # objects are drawn larger and denser in the hard target
    sky = [(make_sample(s, 64, 128, 'target', shift)[1] == C['sky']).mean()
           for shift in ('default', 'hard') for s in range(10)]
    assert np.mean(sky[10:]) < np.mean(sky[:10])
