"""The end of a multi-process run."""
import torch.distributed as dist


def close_process_group() -> None:
    """Destroys the default process group, if one was started.

    The entry points (``tools/train.py``, ``tools/test.py``) call it once
    the Runner has finished. A gloo group left to interpreter shutdown can
    abort the process (SIGABRT, "terminate called without an active
    exception": its worker threads still hold tensors while Python is torn
    down), turning a finished torchrun run into a failed one; NCCL warns
    about the same. Not called after an exception: a rank that tears the
    group down while others still communicate can leave them waiting.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
