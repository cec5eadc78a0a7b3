from .acdc import ACDC_CONDITIONS, ACDCDataset
from .acdc_pseudo_label import ACDCPseudoLabelDataset
from .cityscapes import CheckedCityscapesDataset
from .gta5 import GTA5Dataset
from .image_folder import ImageFolderDataset
from .pseudo_label_dataset import (
    PseudoLabelDataset,
    PseudoLabelMixin,
    pseudo_label_path,
)
from .pseudo_label_folder_dataset import PseudoLabelFolderDataset
from .synthia import SynthiaDataset

__all__ = [
    'ACDC_CONDITIONS', 'ACDCDataset', 'ACDCPseudoLabelDataset',
    'CheckedCityscapesDataset', 'GTA5Dataset', 'ImageFolderDataset',
    'PseudoLabelDataset', 'PseudoLabelFolderDataset', 'PseudoLabelMixin',
    'SynthiaDataset', 'pseudo_label_path'
]
