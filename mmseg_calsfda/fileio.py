"""Atomic file writes: a reader never sees a torn file."""
import os
import os.path as osp
import tempfile

import numpy as np
from PIL import Image


def write_png_atomic(label: np.ndarray, path: str) -> None:
    """Writes a uint8 label PNG via a temporary file and a rename, so a
    reader never sees a torn file."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.png.tmp', dir=osp.dirname(path))
    os.close(fd)
    try:
        Image.fromarray(label).save(tmp, format='PNG')
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
