from .cityscapes import CheckedCityscapesDataset
from .gta5 import GTA5Dataset
from .image_folder import ImageFolderDataset
from .pseudo_label_dataset import PseudoLabelDataset, pseudo_label_path
from .pseudo_label_folder_dataset import PseudoLabelFolderDataset
from .synthia import SynthiaDataset

__all__ = [
    'CheckedCityscapesDataset', 'GTA5Dataset', 'ImageFolderDataset',
    'PseudoLabelDataset', 'PseudoLabelFolderDataset', 'SynthiaDataset',
    'pseudo_label_path'
]
