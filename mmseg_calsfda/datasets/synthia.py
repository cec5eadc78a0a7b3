from mmseg.registry import DATASETS

from .checked_dataset import CheckedSegDataset
from .label_maps import SYNTHIA_CLASSES, SYNTHIA_PALETTE


@DATASETS.register_module()
class SynthiaDataset(CheckedSegDataset):
    """SYNTHIA-RAND-CITYSCAPES with the 16 classes shared with Cityscapes.

    Layout ``data/synthia/RGB/0000000.png`` and ``data/synthia/GT/LABELS/
    0000000.png`` (16-bit, class id in the first channel);
    ``tools/dataset_converters/synthia.py`` writes the train-id maps
    ``GT/LABELS/0000000_labelTrainIds.png`` this class reads.

    Args:
        img_suffix (str): Image file suffix. Defaults to ``'.png'``.
        seg_map_suffix (str): Label file suffix: the converter's train-id
            maps. Defaults to ``'_labelTrainIds.png'``.
        **kwargs: Arguments of MMSeg's :class:`BaseSegDataset`
            (``data_root``, ``data_prefix``, ``ann_file`` -- e.g. the
            converter's ``train.txt``/``val.txt`` --, ``pipeline``, ...).
    """
    METAINFO = dict(classes=SYNTHIA_CLASSES, palette=SYNTHIA_PALETTE)

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
