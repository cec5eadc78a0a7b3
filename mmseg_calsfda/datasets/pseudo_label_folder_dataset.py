from mmseg.registry import DATASETS

from .image_folder import ImageFolderDataset
from .pseudo_label_dataset import PseudoLabelMixin


@DATASETS.register_module()
class PseudoLabelFolderDataset(PseudoLabelMixin, ImageFolderDataset):
    """The images of an :class:`ImageFolderDataset` paired with the current
    round's pseudo-labels (:class:`PseudoLabelMixin`): stage 3's training
    set when the target is a plain folder of images.

    Args:
        pseudo_label_dir (str, optional): Folder of pseudo-label PNGs.
        **kwargs: Arguments of :class:`ImageFolderDataset`.
    """
