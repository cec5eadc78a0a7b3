from .confidence_metric import ConfidenceMetric
from .ece_metric import ECEMetric
from .estimated_ece_metric import EstimatedECEMetric
from .subset_iou_metric import SubsetIoUMetric

__all__ = [
    'ConfidenceMetric', 'ECEMetric', 'EstimatedECEMetric', 'SubsetIoUMetric'
]
