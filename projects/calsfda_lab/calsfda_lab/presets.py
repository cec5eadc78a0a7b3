"""The lab's class-conditional benchmark presets: ``'swap'``, ``'hard'``
and ``'below'`` (registered with
:func:`mmseg_calsfda.datasets.synthetic.register_shift` on import).

They keep the default preset's layouts but render *both* domains textured,
lit, blurred and noisy (the source task needs shape and context), and shift
appearance per class in the target: each class of a confusable group takes
on a share (the *blend*, :data:`SWAP_BLEND`) of its partner's colour and
texture (road and sidewalk, car -> truck -> bus -> car, vegetation and
terrain, person and rider, wall and fence), and objects are drawn 1.3x
larger and denser (more occlusion). No per-channel statistic can undo a
class-conditional change.

* ``'swap'``: every target image has blend 0.6: a swapped class looks more
  like its partner than itself, the source model is confidently wrong, and
  no source-free method can tell.
* ``'hard'``: each target image draws its blend from U(0, 0.8), as real
  target images differ in how far they are from the source: the source
  model is right on the near ones, uncertain or wrong on the far ones, and
  which images are which is what a per-image calibration estimate can tell.
* ``'below'``: ``'hard'`` with blends from U(0, 0.45): every target object
  keeps more of its own colour and texture than it takes from its partner
  (a diagnostic: is ``'hard'``'s appearance overlap what makes
  self-training lose? ``projects/calsfda_lab/docs/findings.md``).
"""
from functools import partial
from typing import Tuple

import numpy as np

from mmseg_calsfda.datasets.label_maps import CITYSCAPES_CLASSES
from mmseg_calsfda.datasets.synthetic import (
    SOURCE_LAYOUT,
    SOURCE_PALETTE,
    TARGET_LAYOUT,
    C,
    DomainLayout,
    Shift,
    photograph,
    register_shift,
    textures,
)

HARD_TARGET_LAYOUT = DomainLayout(
    horizon=TARGET_LAYOUT.horizon,
    road_width=TARGET_LAYOUT.road_width,
    objects={k: 1.3 * v for k, v in TARGET_LAYOUT.objects.items()},
    object_scale=1.3)

# the class whose appearance each class partly takes on in the target
HARD_SWAP = {
    'road': 'sidewalk', 'sidewalk': 'road', 'car': 'truck', 'truck': 'bus',
    'bus': 'car', 'vegetation': 'terrain', 'terrain': 'vegetation',
    'person': 'rider', 'rider': 'person', 'wall': 'fence', 'fence': 'wall'
}
# a preset's range of per-image target blends (share of the partner's look)
SWAP_BLEND = dict(swap=(0.6, 0.6), hard=(0.0, 0.8), below=(0.0, 0.45))
_HARD_PARTNER = np.arange(len(CITYSCAPES_CLASSES))
for _cls, _partner in HARD_SWAP.items():
    _HARD_PARTNER[C[_cls]] = C[_partner]


def render_hard(rng: np.random.Generator, label: np.ndarray, domain: str,
                blend: Tuple[float, float] = SWAP_BLEND['hard']
                ) -> np.ndarray:
    """The presets' rendering: textured, lit, noisy in both domains; in the
    target each class blends towards its :data:`HARD_SWAP` partner's colour
    and texture, by a share drawn per image from ``blend`` (low, high)."""
    height, width = label.shape
    palette = SOURCE_PALETTE + rng.normal(0, 20, SOURCE_PALETTE.shape)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tex = textures(rng, label, yy, xx)
    if domain == 'target':
        # a fixed blend draws nothing from rng: 'swap' images stay those
        # the tuning history in projects/calsfda_lab/docs/findings.md was
        # measured on
        share = blend[0] if blend[0] == blend[1] else rng.uniform(*blend)
        palette = (1 - share) * palette + share * palette[_HARD_PARTNER]
        partner_tex = textures(rng, _HARD_PARTNER[label], yy, xx)
        tex = (1 - share) * tex + share * partner_tex
    img = palette[label] + tex
    img = photograph(rng, img, label, yy, xx, blur=(0.5, 1.2), noise=(3, 8))
    return np.clip(img, 0, 255).astype(np.uint8)


for _name, _blend in SWAP_BLEND.items():
    register_shift(
        _name,
        Shift(dict(source=SOURCE_LAYOUT, target=HARD_TARGET_LAYOUT),
              partial(render_hard, blend=_blend)))
