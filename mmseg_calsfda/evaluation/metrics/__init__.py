from .ece_metric import ECEMetric
from .estimated_ece_metric import EstimatedECEMetric

__all__ = ['ECEMetric', 'EstimatedECEMetric']
