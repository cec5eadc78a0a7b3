from .cityscapes import CheckedCityscapesDataset
from .gta5 import GTA5Dataset
from .pseudo_label_dataset import PseudoLabelDataset, pseudo_label_path
from .synthia import SynthiaDataset

__all__ = [
    'CheckedCityscapesDataset', 'GTA5Dataset', 'PseudoLabelDataset',
    'SynthiaDataset', 'pseudo_label_path'
]
