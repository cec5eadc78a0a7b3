"""A procedural street-scene benchmark with a synthetic -> real style shift.

Scenes are built from a *layout* (horizon, road geometry, skyline, objects
placed with perspective scaling and drawn far to near so that near objects
occlude far ones) and then *rendered* in a style. Layout statistics (class
frequencies, object sizes, horizon height, road width) and the rendering style
both differ between the ``'source'`` (GTA5-like) and ``'target'``
(Cityscapes-like) domains:

* appearance: palette and saturation, flat shading vs textures (noise,
  stripes, bricks, foliage), lighting direction, shadows, blur, sensor noise
  and JPEG artefacts;
* label shift: more pedestrians and bicycles, fewer trucks, a lower horizon
  and narrower roads in the target;
* confusable classes: road/sidewalk, car/truck/bus, vegetation/terrain and
  pole/sign look alike in the target style.

:func:`write_gta5_split` and :func:`write_cityscapes_split` write the real
datasets' directory layouts and label encodings (Cityscapes label ids), so the
real dataset classes and converters read them. Deterministic per seed.

Presets (``shift``): ``'default'`` is the above, the benchmark of the demo
and the tests. In it a source image is its label map in a palette (a colour
lookup) and the target moves confusable colours together, so most of the
shift is global colour statistics, which BatchNorm re-estimation undoes.
Other presets are registered with :func:`register_shift` (a :class:`Shift`:
each domain's layout statistics and a renderer built from :func:`textures`
and :func:`photograph`); the lab (``projects/calsfda_lab``) registers its
class-conditional ``'swap'``, ``'hard'`` and ``'below'`` presets so.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from ..utils import check_choice
from .label_maps import CITYSCAPES_CLASSES, CITYSCAPES_IDS, IGNORE_INDEX

C = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}


@dataclass(frozen=True)
class DomainLayout:
    """Layout statistics of one domain."""
    horizon: Tuple[float, float]  # horizon height as a fraction of H
    road_width: Tuple[float, float]  # road width at the bottom, fraction of W
    objects: Dict[str, float]  # expected number of objects per image
    object_scale: float = 1.0  # object size factor


SOURCE_LAYOUT = DomainLayout(
    horizon=(0.38, 0.48),
    road_width=(0.75, 1.0),
    objects={
        'car': 3.0, 'truck': 1.2, 'bus': 0.5, 'train': 0.15, 'person': 1.0,
        'rider': 0.3, 'motorcycle': 0.3, 'bicycle': 0.2, 'pole': 2.0,
        'traffic light': 0.6, 'traffic sign': 0.8, 'fence': 0.6,
        'wall': 0.5, 'vegetation': 1.5, 'terrain': 0.8
    })
TARGET_LAYOUT = DomainLayout(
    horizon=(0.44, 0.55),
    road_width=(0.55, 0.8),
    objects={
        'car': 3.0, 'truck': 0.3, 'bus': 0.4, 'train': 0.1, 'person': 2.5,
        'rider': 0.6, 'motorcycle': 0.3, 'bicycle': 1.0, 'pole': 3.0,
        'traffic light': 0.8, 'traffic sign': 1.0, 'fence': 0.8,
        'wall': 0.4, 'vegetation': 2.0, 'terrain': 1.2
    })
LAYOUTS = dict(source=SOURCE_LAYOUT, target=TARGET_LAYOUT)

# Object shapes: (width / height ratio, height in metres-ish units).
_OBJECT_SHAPE = {
    'car': (2.2, 1.0), 'truck': (1.6, 2.2), 'bus': (2.6, 2.0),
    'train': (4.0, 2.2), 'person': (0.4, 1.2), 'rider': (0.45, 1.3),
    'motorcycle': (1.2, 0.7), 'bicycle': (1.2, 0.7), 'pole': (0.08, 3.5),
    'traffic light': (0.35, 0.8), 'traffic sign': (0.6, 0.6),
    'fence': (4.0, 0.6), 'wall': (4.0, 0.9), 'vegetation': (1.6, 2.4),
    'terrain': (3.0, 0.25)
}

# Source palette: Cityscapes' own colours (GTA5-like, saturated, flat).
SOURCE_PALETTE = np.array([
    [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156],
    [190, 153, 153], [153, 153, 153], [250, 170, 30], [220, 220, 0],
    [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
    [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100],
    [0, 0, 230], [119, 11, 32]
], dtype=np.float32)
# Target palette: desaturated, warmer, confusable pairs drawn together --
# halfway between the source colours and these.
_TARGET_SHIFT = np.array([
    [105, 100, 110], [120, 110, 118], [118, 104, 92], [128, 122, 128],
    [150, 140, 120], [110, 110, 105], [140, 120, 70], [118, 116, 96],
    [80, 108, 60], [98, 118, 70], [170, 185, 200], [150, 60, 70],
    [140, 70, 60], [60, 62, 95], [70, 70, 98], [62, 78, 102], [70, 90, 100],
    [80, 60, 120], [110, 50, 60]
], dtype=np.float32)
_TARGET_PALETTE = 0.5 * SOURCE_PALETTE + 0.5 * _TARGET_SHIFT


def make_layout(rng: np.random.Generator, height: int, width: int,
                domain: str, shift: str = 'default') -> np.ndarray:
    """Draws one scene's label map (train ids 0..18).

    Args:
        rng (np.random.Generator): Source of randomness.
        height, width (int): Image size.
        domain (str): ``'source'`` or ``'target'``.
        shift (str): The preset (:data:`SHIFTS`).

    Returns:
        np.ndarray: ``height x width`` uint8 train ids.
    """
    stats = _preset(shift).layouts[domain]
    label = np.full((height, width), C['sky'], dtype=np.uint8)
    horizon = int(rng.uniform(*stats.horizon) * height)
    vanish_x = int(width * rng.uniform(0.35, 0.65))

    # Skyline of buildings over the horizon.
    x = 0
    while x < width:
        bw = int(width * rng.uniform(0.08, 0.25))
        top = int(horizon * rng.uniform(0.05, 0.7))
        label[top:horizon + 2, x:x + bw] = C['building']
        x += bw + int(width * rng.uniform(0, 0.05))

    # Ground: sidewalk everywhere below the horizon, then the road trapezoid.
    label[horizon:] = C['sidewalk']
    half = rng.uniform(*stats.road_width) * width / 2
    bottom_x = vanish_x + rng.uniform(-0.15, 0.15) * width
    road = np.array([[vanish_x - 2, horizon], [vanish_x + 2, horizon],
                     [bottom_x + half, height], [bottom_x - half, height]],
                    dtype=np.int32)
    cv2.fillPoly(label, [road], C['road'])
    _draw_objects(rng, label, horizon, vanish_x, stats)
    return label


def _draw_objects(rng: np.random.Generator, label: np.ndarray, horizon: int,
                  vanish_x: int, stats: DomainLayout) -> None:
    """Places objects on the ground plane, far to near (occlusion order)."""
    height, width = label.shape
    objects = []
    for name, rate in stats.objects.items():
        for _ in range(rng.poisson(rate)):
            depth = rng.uniform(0.08, 1.0)  # 0 at the horizon, 1 at the bottom
            objects.append((depth, name, rng.uniform(-1.2, 1.2)))
    for depth, name, lateral in sorted(objects):
        aspect, size = _OBJECT_SHAPE[name]
        base_y = int(horizon + depth * (height - horizon))
        obj_h = max(2, int(size * 0.22 * depth * height *
                           stats.object_scale))
        obj_w = max(2, int(obj_h * aspect / size))
        cx = int(vanish_x + lateral * depth * width * 0.6)
        x0, x1 = cx - obj_w // 2, cx + obj_w // 2 + 1
        y0 = base_y - obj_h
        _draw_object(label, name, x0, x1, y0, base_y)


def _draw_object(label: np.ndarray, name: str, x0: int, x1: int, y0: int,
                 y1: int) -> None:
    """Draws one object into ``label`` with a class-specific silhouette."""
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, label.shape[1]), min(y1, label.shape[0])
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    h, w = y1 - y0, x1 - x0
    cls = C[name]
    if name in ('person', 'rider'):
        cv2.ellipse(label, ((x0 + x1) // 2, y0 + h // 8),
                    (max(1, w // 3), max(1, h // 8)), 0, 0, 360, cls, -1)
        label[y0 + h // 5:y1, x0:x1] = cls
        if name == 'rider':
            _draw_object(label, 'bicycle', x0 - w // 2, x1 + w // 2,
                         y1 - h // 3, y1)
    elif name in ('bicycle', 'motorcycle'):
        r = max(1, h // 2)
        for cx in (x0 + r, x1 - r):
            cv2.circle(label, (cx, y1 - r), r, cls, max(1, r // 3))
        label[y1 - h:y1 - r, x0 + r:x1 - r] = cls
    elif name == 'pole':
        label[y0:y1, x0:x1] = cls
    elif name in ('traffic light', 'traffic sign'):
        pole_x = (x0 + x1) // 2
        label[y0:y1, pole_x:pole_x + max(1, w // 6)] = C['pole']
        top_h = max(2, h // 2)
        if name == 'traffic sign':
            cv2.circle(label, (pole_x, y0 + top_h // 2), max(1, w // 2),
                       cls, -1)
        else:
            label[y0:y0 + top_h, x0:x1] = cls
    elif name == 'vegetation':
        cv2.ellipse(label, ((x0 + x1) // 2, y0 + h // 3),
                    (max(1, w // 2), max(1, h // 3)), 0, 0, 360, cls, -1)
        trunk = max(1, w // 8)
        label[y0 + h // 2:y1, (x0 + x1) // 2 - trunk:(x0 + x1) // 2 +
              trunk] = cls
    elif name in ('car', 'truck', 'bus', 'train'):
        label[y0 + h // 4:y1 - max(1, h // 8), x0:x1] = cls
        roof = (x0 + w // 6, x1 - w // 6) if name == 'car' else (x0, x1)
        label[y0:y0 + h // 4 + 1, roof[0]:roof[1]] = cls
    else:  # fence, wall, terrain: flat strips
        label[y0:y1, x0:x1] = cls


def render(rng: np.random.Generator, label: np.ndarray,
           domain: str) -> np.ndarray:
    """Renders a label map as an RGB image in a domain's style.

    Args:
        rng (np.random.Generator): Source of randomness.
        label (np.ndarray): ``H x W`` train ids.
        domain (str): ``'source'`` (flat, saturated, clean) or ``'target'``
            (textured, desaturated, lit, blurred, noisy, compressed).

    Returns:
        np.ndarray: ``H x W x 3`` uint8 RGB image.
    """
    height, width = label.shape
    palette = SOURCE_PALETTE if domain == 'source' else _TARGET_PALETTE
    jitter = rng.normal(0, 12 if domain == 'source' else 8, palette.shape)
    img = (palette + jitter)[label]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if domain == 'source':
        img *= (0.9 + 0.2 * yy / height)[..., None]
        img += rng.normal(0, 3, img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)

    img += textures(rng, label, yy, xx)
    img = photograph(rng, img, label, yy, xx, blur=(0.6, 1.4), noise=(4, 10))
    img = np.clip(img, 0, 255).astype(np.uint8)
    quality = int(rng.integers(35, 70))
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def textures(rng: np.random.Generator, label: np.ndarray, yy: np.ndarray,
              xx: np.ndarray) -> np.ndarray:
    """Class-dependent texture offsets for the target style."""
    h, w = label.shape
    noise = cv2.resize(
        rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32), (w, h))
    stripes = np.sin(xx * rng.uniform(0.3, 0.8)) * np.sin(yy * 0.9)
    bricks = ((yy % 6) < 1) | (((xx + 5 * ((yy // 6) % 2)) % 10) < 1)
    tex = np.zeros_like(noise)
    tex = np.where(label == C['building'], 14 * stripes - 25 * bricks, tex)
    foliage = np.isin(label, (C['vegetation'], C['terrain']))
    tex = np.where(foliage, 30 * noise, tex)
    tex = np.where(np.isin(label, (C['road'], C['sidewalk'])), 12 * noise, tex)
    return tex[..., None]


def photograph(rng: np.random.Generator, img: np.ndarray, label: np.ndarray,
                yy: np.ndarray, xx: np.ndarray, blur: Tuple[float, float],
                noise: Tuple[float, float]) -> np.ndarray:
    """Directional light, cast shadows, a Gaussian blur of sigma in
    ``blur`` and sensor noise of sigma in ``noise`` (float, unclipped)."""
    height, width = label.shape
    angle = rng.uniform(0, 2 * np.pi)
    light = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    img *= (rng.uniform(0.75, 1.0) + rng.uniform(0.15, 0.4) * light)[..., None]
    img = _cast_shadows(rng, img, label)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*blur))
    return img + rng.normal(0, rng.uniform(*noise), img.shape)


def _cast_shadows(rng: np.random.Generator, img: np.ndarray,
                  label: np.ndarray) -> np.ndarray:
    """Darkens a few random ground-plane polygons (cast shadows)."""
    h, w = label.shape
    mask = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(1, 4)):
        pts = rng.uniform([0, h * 0.4], [w, h], size=(4, 2)).astype(np.int32)
        cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1)
    return img * np.where(mask.astype(bool), 0.6, 1.0)[..., None]


@dataclass(frozen=True)
class Shift:
    """A benchmark preset: the layout statistics of each domain
    (``'source'``, ``'target'``) and how a label map is rendered,
    ``render(rng, label, domain) -> H x W x 3 uint8``."""
    layouts: Dict[str, DomainLayout]
    render: Callable[[np.random.Generator, np.ndarray, str], np.ndarray]


# benchmark presets by name (``write_benchmark(shift=...)``)
SHIFTS: Dict[str, Shift] = {}


def register_shift(name: str, shift: Shift) -> None:
    """Adds a preset that :func:`write_benchmark` and :func:`make_sample`
    accept by ``name``."""
    SHIFTS[name] = shift


def _preset(name: str) -> Shift:
    check_choice('shift', name, tuple(SHIFTS))
    return SHIFTS[name]


register_shift('default', Shift(LAYOUTS, render))


def make_sample(seed: int, height: int, width: int, domain: str,
                shift: str = 'default') -> Tuple[np.ndarray, np.ndarray]:
    """One (RGB image, train-id label) pair, deterministic per seed (and
    preset)."""
    preset = _preset(shift)
    rng = np.random.default_rng(seed)
    label = make_layout(rng, height, width, domain, shift)
    return preset.render(rng, label, domain), label


def train_ids_to_label_ids(label: np.ndarray) -> np.ndarray:
    """Encodes train ids as Cityscapes label ids (255 -> 0, 'unlabeled')."""
    lut = np.zeros(256, np.uint8)
    lut[:len(CITYSCAPES_IDS)] = CITYSCAPES_IDS
    lut[IGNORE_INDEX] = 0
    return lut[label]


def _imwrite(path: str, img: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(path, img):
        raise OSError(f'could not write {path}')


def _split_seed(seed: int, split: str) -> int:
    """Each split draws from its own seed stream."""
    return int(np.random.SeedSequence([seed, sum(map(ord, split))]).
               generate_state(1)[0])


def write_gta5_split(root: str, num_images: int, height: int, width: int,
                     seed: int, split: str = 'train',
                     domain: str = 'source', shift: str = 'default') -> None:
    """Writes a GTA5-style tree: ``images/<split>_NNNNN.png`` and
    ``labels/<split>_NNNNN.png`` (Cityscapes label ids, as GTA5 ships them)
    and a ``<split>.txt`` list of the split's file stems. Run the GTA5
    converter afterwards (:func:`write_benchmark` does) for the train-id maps
    :class:`GTA5Dataset` reads."""
    base = _split_seed(seed, split)
    stems = []
    for i in range(num_images):
        img, label = make_sample(base + i, height, width, domain, shift)
        stem = f'{split}_{i:05d}'
        _imwrite(osp.join(root, 'images', stem + '.png'), img)
        _imwrite(osp.join(root, 'labels', stem + '.png'),
                 train_ids_to_label_ids(label))
        stems.append(stem)
    with open(osp.join(root, f'{split}.txt'), 'w') as f:
        f.write('\n'.join(stems) + '\n')


def write_cityscapes_split(root: str, num_images: int, height: int,
                           width: int, seed: int, split: str,
                           domain: str = 'target',
                           city: str = 'synthcity',
                           shift: str = 'default') -> None:
    """Writes a Cityscapes-style tree: ``leftImg8bit/<split>/<city>/
    <city>_000000_NNNNNN_leftImg8bit.png`` with ``gtFine/<split>/<city>/
    ..._gtFine_labelIds.png`` and ``..._gtFine_labelTrainIds.png``."""
    base = _split_seed(seed, split)
    for i in range(num_images):
        img, label = make_sample(base + i, height, width, domain, shift)
        stem = f'{city}_000000_{i:06d}'
        _imwrite(
            osp.join(root, 'leftImg8bit', split, city,
                     stem + '_leftImg8bit.png'), img)
        gt = osp.join(root, 'gtFine', split, city, stem + '_gtFine_')
        _imwrite(gt + 'labelIds.png', train_ids_to_label_ids(label))
        _imwrite(gt + 'labelTrainIds.png', label)


def write_benchmark(root: str, seed: int = 0, height: int = 128,
                    width: int = 256, source_train: int = 200,
                    source_val: int = 50, target_train: int = 200,
                    target_val: int = 50, nproc: int = 1,
                    shift: str = 'default') -> None:
    """The whole benchmark under ``root``: ``gta/`` (labelled source, train
    and val lists, converted with the real GTA5 converter) and
    ``cityscapes/`` (target train images; val labels for reporting).
    ``shift`` names a preset of :data:`SHIFTS`."""
    from .converters import GTA5_FORMAT, convert_tree
    _preset(shift)  # an unknown name fails before anything is written
    gta, city = osp.join(root, 'gta'), osp.join(root, 'cityscapes')
    write_gta5_split(gta, source_train, height, width, seed, 'train',
                     shift=shift)
    write_gta5_split(gta, source_val, height, width, seed, 'val',
                     shift=shift)
    convert_tree(gta, 'images', 'labels', GTA5_FORMAT, CITYSCAPES_CLASSES,
                 nproc=nproc)
    write_cityscapes_split(city, target_train, height, width, seed, 'train',
                           shift=shift)
    write_cityscapes_split(city, target_val, height, width, seed, 'val',
                           shift=shift)
