from .diff_ece_loss import DiffECELoss

__all__ = ['DiffECELoss']
