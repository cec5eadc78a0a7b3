from ..fileio import write_png_atomic
from .calibrated_pseudo_labeler import CalibratedPseudoLabeler
from .pseudo_label_pass import run_pseudo_label_pass

__all__ = [
    'CalibratedPseudoLabeler', 'run_pseudo_label_pass', 'write_png_atomic'
]
