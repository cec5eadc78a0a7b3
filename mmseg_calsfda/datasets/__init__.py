from .acdc import ACDC_CONDITIONS, ACDCDataset
from .acdc_pseudo_label import ACDCPseudoLabelDataset
from .cityscapes import CheckedCityscapesDataset
from .gta5 import GTA5Dataset
from .pseudo_label_dataset import (
    PseudoLabelDataset,
    PseudoLabelMixin,
    pseudo_label_path,
)
from .synthia import SynthiaDataset

__all__ = [
    'ACDC_CONDITIONS', 'ACDCDataset', 'ACDCPseudoLabelDataset',
    'CheckedCityscapesDataset', 'GTA5Dataset', 'PseudoLabelDataset',
    'PseudoLabelMixin', 'SynthiaDataset', 'pseudo_label_path'
]
