"""Label encodings of the source datasets and their maps to train ids."""
import numpy as np

IGNORE_INDEX = 255

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation',
                      'terrain', 'sky', 'person', 'rider', 'car', 'truck',
                      'bus', 'train', 'motorcycle', 'bicycle')
CITYSCAPES_PALETTE = [[128, 64, 128], [244, 35, 232], [70, 70, 70],
                      [102, 102, 156], [190, 153, 153], [153, 153, 153],
                      [250, 170, 30], [220, 220, 0], [107, 142, 35],
                      [152, 251, 152], [70, 130, 180], [220, 20, 60],
                      [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100],
                      [0, 80, 100], [0, 0, 230], [119, 11, 32]]

# GTA5 labels are Cityscapes label ids; train id i is CITYSCAPES_IDS[i].
CITYSCAPES_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                  31, 32, 33)

SYNTHIA_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                   'traffic light', 'traffic sign', 'vegetation', 'sky',
                   'person', 'rider', 'car', 'bus', 'motorcycle', 'bicycle')
SYNTHIA_PALETTE = [
    CITYSCAPES_PALETTE[CITYSCAPES_CLASSES.index(c)] for c in SYNTHIA_CLASSES
]
# SYNTHIA-RAND-CITYSCAPES class ids (first channel of the 16-bit label PNG);
# train id i is SYNTHIA_IDS[i].
SYNTHIA_IDS = (3, 4, 2, 21, 5, 7, 15, 9, 6, 1, 10, 17, 8, 19, 12, 11)
# The 13-class protocol drops wall, fence and pole.
SYNTHIA_13_CLASSES = tuple(c for c in SYNTHIA_CLASSES
                           if c not in ('wall', 'fence', 'pole'))


def id_to_train_id_lut(ids, size: int = 65536) -> np.ndarray:
    """A lookup table from raw ids to train ids (255 for unlabelled ids).

    Args:
        ids (Sequence[int]): ``ids[train_id]`` is the raw id of that class.
        size (int): Number of raw ids the table covers.

    Returns:
        np.ndarray: uint8 table of length ``size``.
    """
    lut = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    lut[np.asarray(ids)] = np.arange(len(ids), dtype=np.uint8)
    return lut
