from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from .checked_dataset import CheckedSegDatasetMixin
from .random_subset import RandomSubsetMixin


@DATASETS.register_module()
class CheckedCityscapesDataset(RandomSubsetMixin, CheckedSegDatasetMixin,
                               CityscapesDataset):
    """MMSeg's :class:`CityscapesDataset` that names the config key and path
    of a missing data root, an empty image folder or a missing label.

    ``subset=dict(size=..., seed=...)`` takes a seeded random sample of the
    images (:class:`RandomSubsetMixin`) instead of MMEngine's first
    ``indices=N``; the shipped configs keep ``indices``.

    Args:
        **kwargs: Arguments of MMSeg's :class:`CityscapesDataset`
            (``img_suffix='_leftImg8bit.png'``,
            ``seg_map_suffix='_gtFine_labelTrainIds.png'``, ``data_root``,
            ``data_prefix``, ``pipeline``, ...).
    """
