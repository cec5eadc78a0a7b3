from mmseg.registry import TASK_UTILS

from .calibrated_pseudo_labeler import CalibratedPseudoLabeler


@TASK_UTILS.register_module()
class ReferencePseudoLabeler(CalibratedPseudoLabeler):
    """:class:`CalibratedPseudoLabeler` as the official code labels: its
    ``cb_prop`` growth, its threshold rule and its selection (unscaled
    probabilities, any class passing) -- the "reference setting" of all
    three (docs/differences.md, :class:`PseudoLabelRules`). Any of them
    can be set back to the recipe's.

    Args:
        num_classes (int): Number of classes.
        growth (str): Defaults to ``'reference'``.
        selection (str): Defaults to ``'reference'``.
        threshold_rule (str): Defaults to ``'reference'``.
        **kwargs: The other arguments of :class:`CalibratedPseudoLabeler`.
    """

    def __init__(self,
                 num_classes: int,
                 growth: str = 'reference',
                 selection: str = 'reference',
                 threshold_rule: str = 'reference',
                 **kwargs) -> None:
        super().__init__(num_classes, growth=growth, selection=selection,
                         threshold_rule=threshold_rule, **kwargs)
