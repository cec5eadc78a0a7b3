"""Checkpoints with numpy contents load through the plugin's allow-list
(torch.load's weights_only default), whichever NumPy major wrote them."""
import io
import zipfile

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

# NumPy 1's and NumPy 2's module of the functions pickled arrays name
MULTIARRAY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def rewrite_pickle(data: bytes, old: bytes, new: bytes) -> bytes:
    """A torch.save zip file with ``old`` replaced by ``new`` in its
    pickle, as the other NumPy major would have written it."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename.endswith('/data.pkl'):
                assert old in content
                content = content.replace(old, new)
            dst.writestr(info.filename, content)
    return out.getvalue()


@pytest.mark.parametrize('major', [0, 1], ids=['numpy1', 'numpy2'])
def test_numpy_arrays_and_scalars_of_either_major(tmp_path, major):
    """The meta of an mmengine checkpoint holds numpy scalars and arrays;
    their pickle names ``numpy.core.multiarray`` (NumPy 1) or
    ``numpy._core.multiarray`` (NumPy 2)."""
    running = np.ndarray.__reduce__(np.zeros(1))[0].__module__
    assert running in MULTIARRAY_MODULES
    written = MULTIARRAY_MODULES[major]
    ckpt = dict(state_dict=dict(w=torch.arange(3.)),
                meta=dict(best_score=np.float64(0.25),
                          counts=np.arange(4, dtype=np.int64)))
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    data = rewrite_pickle(buf.getvalue(), running.encode(), written.encode())
    path = tmp_path / f'{written}.pth'
    path.write_bytes(data)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['meta']['best_score'] == 0.25
    assert isinstance(loaded['meta']['best_score'], np.float64)
    assert loaded['meta']['counts'].tolist() == [0, 1, 2, 3]
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.))
