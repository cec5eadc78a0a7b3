from .calsfda_segmentor import (
    CalSFDASegmentor,
    has_value_head,
    value_head_reads_backbone,
)

__all__ = ['CalSFDASegmentor', 'has_value_head', 'value_head_reads_backbone']
