"""What every benchmark script records, how it writes its result, and the
model configs they time."""
import gc
import json
import os
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Dict, Optional

import torch


def stage_config(name: str, depth: int):
    """A shipped stage config (``configs/calsfda/<name>``) with plain BN
    (one process: no SyncBN), no pretrained weights, and a ResNet backbone
    of ``depth`` (other backbones keep their size).
    """
    from mmseg_calsfda.testing import load_stage_config, resize_resnet
    cfg = load_stage_config(name)
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    bn = dict(type='BN', requires_grad=True)
    cfg.model.decode_head.norm_cfg = bn
    if 'ResNet' in cfg.model.backbone.type:
        cfg.model.backbone.norm_cfg = bn
        resize_resnet(cfg.model, depth)
    return cfg


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


def write_result(result: dict, out: Optional[str], echo: bool = True) -> None:
    """Writes the result as JSON to ``out`` (if given) and to stdout (if
    ``echo``)."""
    if echo:
        print(json.dumps(result, indent=2))
    if out:
        from mmseg_calsfda.fileio import write_json_atomic
        write_json_atomic(result, out)


def timed(fn: Callable, device: str, reps: int = 1, warmup: int = 0) -> float:
    """Median wall time of ``fn()`` in seconds, CUDA-synchronised."""
    sync = torch.cuda.synchronize if device.startswith('cuda') else (
        lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(fns: Dict[str, Callable], device: str, reps: int,
                warmup: int = 0) -> Dict[str, float]:
    """Median wall time of each ``fns[name]()``, timed in turn (A B A B
    ...) so that drift (clocks, caches, the page cache) hits all alike,
    after ``warmup`` untimed calls of each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(values)
            for name, values in times.items()}


def peak_memory_mib(device: str) -> Optional[float]:
    """Peak CUDA memory since the last reset (None on CPU)."""
    if not device.startswith('cuda'):
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def allocated_mib(device: str) -> Optional[float]:
    """CUDA memory held by live tensors now (None on CPU)."""
    if not device.startswith('cuda'):
        return None
    return torch.cuda.memory_allocated() / 2**20


def reset_peak_memory(device: str) -> None:
    """Frees what earlier benchmarks left for the garbage collector (e.g.
    torchmetrics' states in reference cycles), then resets the peak."""
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def write_profile(fn: Callable, device: str, path: str) -> None:
    """Profiles ``fn()`` and writes its busiest operators by self time, on
    the CPU (host-side waits such as ``cudaStreamSynchronize`` show here)
    and on the GPU."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device.startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
    events = prof.key_averages()
    tables = [events.table(sort_by='self_cpu_time_total', row_limit=30)]
    if device.startswith('cuda'):
        tables.append(events.table(sort_by='self_device_time_total',
                                   row_limit=20))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n\n'.join(tables))
