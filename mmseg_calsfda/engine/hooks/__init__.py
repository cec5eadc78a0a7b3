from .bn_warmup_hook import BNWarmupHook
from .ece_checkpoint_hook import ECECheckpointHook
from .ece_loss_warmup_hook import ECELossWarmupHook
from .progress_bar_hook import ProgressBarHook
from .self_training_hook import SelfTrainingHook

__all__ = [
    'BNWarmupHook', 'ECECheckpointHook', 'ECELossWarmupHook',
    'ProgressBarHook', 'SelfTrainingHook'
]
