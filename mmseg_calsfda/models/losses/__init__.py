from .diff_ece_loss import DiffECELoss
from .negative_learning_loss import NegativeLearningLoss
from .normalized_entropy_loss import NormalizedEntropyLoss
from .symmetric_ce_loss import SymmetricCELoss

__all__ = [
    'DiffECELoss', 'NegativeLearningLoss', 'NormalizedEntropyLoss',
    'SymmetricCELoss'
]
