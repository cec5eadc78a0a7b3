from typing import Optional

from mmseg.registry import DATASETS

from .acdc import ACDCDataset
from .pseudo_label_dataset import PseudoLabelMixin


@DATASETS.register_module()
class ACDCPseudoLabelDataset(PseudoLabelMixin, ACDCDataset):
    """The ACDC images of ``split`` under ``conditions`` (listed as
    :class:`ACDCDataset` lists them), paired with the current round's
    pseudo-labels (:class:`PseudoLabelMixin`): stage 3's training set on
    ACDC. ``data_prefix`` has no ``seg_map_path``: ACDC's labels are never
    read.

    Args:
        pseudo_label_dir (str, optional): Folder of pseudo-label PNGs.
        data_prefix (dict): Defaults to ``dict(img_path='rgb_anon')``.
        **kwargs: Arguments of :class:`ACDCDataset`.
    """

    def __init__(self,
                 pseudo_label_dir: Optional[str] = None,
                 data_prefix: dict = dict(img_path='rgb_anon'),
                 **kwargs) -> None:
        super().__init__(
            pseudo_label_dir=pseudo_label_dir, data_prefix=data_prefix,
            **kwargs)
