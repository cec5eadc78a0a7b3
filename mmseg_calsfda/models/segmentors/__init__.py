from .calsfda_segmentor import (
    CalSFDASegmentor,
    has_value_head,
    value_head_reads_backbone,
)
from .calsfda_tta_model import CalSFDATTAModel

__all__ = [
    'CalSFDASegmentor', 'CalSFDATTAModel', 'has_value_head',
    'value_head_reads_backbone'
]
