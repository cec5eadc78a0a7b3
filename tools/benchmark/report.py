"""What every benchmark script records and how it writes its result."""
import json
import os
import os.path as osp
import platform
from typing import Optional

import torch


def environment(device: str) -> dict:
    """Versions and the device a result was measured on."""
    import mmcv
    import mmengine
    import mmseg
    env = dict(torch=torch.__version__, mmcv=mmcv.__version__,
               mmengine=mmengine.__version__, mmseg=mmseg.__version__,
               python=platform.python_version(), device=device,
               threads=torch.get_num_threads())
    if device.startswith('cuda'):
        env.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    else:
        env.update(cpu=platform.processor() or platform.machine(),
                   cores=os.cpu_count())
    return env


def write_result(result: dict, out: Optional[str]) -> None:
    """Prints the result as JSON and writes it to ``out`` if given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            f.write(text + '\n')
