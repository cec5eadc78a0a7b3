from .cityscapes import CheckedCityscapesDataset
from .gta5 import GTA5Dataset
from .synthia import SynthiaDataset

__all__ = ['CheckedCityscapesDataset', 'GTA5Dataset', 'SynthiaDataset']
