from .ece_metric import ECEMetric

__all__ = ['ECEMetric']
