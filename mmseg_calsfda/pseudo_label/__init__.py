from ..fileio import write_png_atomic
from .calibrated_pseudo_labeler import CalibratedPseudoLabeler, Top1
from .pseudo_label_pass import run_pseudo_label_pass
from .pseudo_label_rules import PseudoLabelRules
from .reference_pseudo_labeler import ReferencePseudoLabeler

__all__ = [
    'CalibratedPseudoLabeler', 'PseudoLabelRules', 'ReferencePseudoLabeler',
    'Top1', 'run_pseudo_label_pass', 'write_png_atomic'
]
