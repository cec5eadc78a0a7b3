from .ece_loss_warmup_hook import ECELossWarmupHook

__all__ = ['ECELossWarmupHook']
