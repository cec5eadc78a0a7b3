from mmseg.registry import DATASETS

from .checked_dataset import CheckedSegDataset
from .label_maps import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE


@DATASETS.register_module()
class GTA5Dataset(CheckedSegDataset):
    """GTA5 (Playing for Data) with the 19 Cityscapes classes.

    Layout ``data/gta/images/00001.png`` and ``data/gta/labels/00001.png``
    (Cityscapes label ids); ``tools/dataset_converters/gta5.py`` writes the
    train-id maps ``labels/00001_labelTrainIds.png`` this class reads.

    Args:
        img_suffix (str): Image file suffix. Defaults to ``'.png'``.
        seg_map_suffix (str): Label file suffix: the converter's train-id
            maps. Defaults to ``'_labelTrainIds.png'``.
        **kwargs: Arguments of MMSeg's :class:`BaseSegDataset`
            (``data_root``, ``data_prefix``, ``ann_file`` -- e.g. the
            converter's ``train.txt``/``val.txt`` --, ``pipeline``, ...).
    """
    METAINFO = dict(classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE)

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
