"""One pseudo-labelling pass of a self-training round, resumable.

Thresholds need statistics of the whole target set before any label can be
made, so the pass has two halves. With ``selection='calibrated'`` the second
half needs only each pixel's top-1 confidence and prediction, which the first
half keeps on disk (3 bytes per pixel, deleted when the round is published),
so the model runs once; the reference selection needs every class's
probability and runs the model again.

``run_pseudo_label_pass`` writes round ``r``'s PNGs into
``<out_root>/round_<r>.tmp/`` and renames the folder to ``round_<r>/`` only
when every rank has finished, after writing ``summary.json``. A finished round
is reused as it is; an unfinished one (a run killed mid-pass) is removed and
redone, so the training dataset never reads a torn or mixed-round label.
"""
import json
import os
import os.path as osp
import shutil
import time
from functools import partial
from typing import Dict, Iterable, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import (
    all_reduce,
    barrier,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
)
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor

from ..datasets.pseudo_label_dataset import pseudo_label_path
from ..fileio import BackgroundWriter, prefetch, write_png_atomic
from .calibrated_pseudo_labeler import CalibratedPseudoLabeler, count_values


def round_dir(out_root: str, round_idx: int) -> str:
    """The folder of a finished round."""
    return osp.join(out_root, f'round_{round_idx}')


def load_round(out_root: str, round_idx: int) -> Dict:
    """The summary of a finished round, or ``{}``."""
    path = osp.join(round_dir(out_root, round_idx), 'summary.json')
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _outputs(model, dataloader: Iterable, desc: str):
    """Yields ``(probs 1 x C x H x W, est_ece (1,) on the CPU, img_path)``
    per image."""
    progress = ProgressBar(len(dataloader)) if is_main_process() else None
    if progress is not None:
        print_log(f'pseudo-labels: {desc}', logger='current')
    with torch.no_grad():
        for batch in dataloader:
            for sample in model.test_step(batch):
                if 'est_ece' not in sample:
                    raise RuntimeError(
                        'the model has no value head: target adaptation '
                        'starts from a stage-2 checkpoint (e.g. from '
                        'configs/calsfda/deeplabv2_r101_gta5_value.py)')
                logits = sample.seg_logits.data[None]
                est = torch.tensor([float(sample.est_ece)])
                probs = F.softmax(logits, dim=1, dtype=torch.float32)
                yield probs, est, sample.img_path
            if progress is not None:
                progress.update()


# The per-image work below never waits for the device on the main thread:
# copies to the host happen on writer threads, reads of the top-1 cache run
# ahead on reader threads, and counts are scattered, not bincount-ed.


def _save_top1(conf: Tensor, pred: Tensor, est: Tensor, img_path: str,
               path: str) -> None:
    """Copies an image's top-1 outputs to the host and saves them (with
    its estimate, already on the host)."""
    torch.save(dict(conf=conf.cpu(), pred=pred.cpu(), est=est,
                    img_path=img_path), path)


def _load_top1(path: str, pin: bool) -> Dict:
    """Reads what :func:`_save_top1` saved; pinned for an asynchronous
    copy to a GPU if ``pin``."""
    item = torch.load(path)
    if pin:
        for key in ('conf', 'pred'):
            item[key] = item[key].pin_memory()
    return item


def _write_label(label: Tensor, path: str) -> None:
    """Copies a label map to the host and writes it as a PNG."""
    write_png_atomic(label.to(torch.uint8).cpu().numpy(), path)


def _check_cache_space(cache: str, pixels_per_image: int,
                       dataloader: Iterable) -> None:
    """Fails early, naming the folder and sizes, when the top-1 cache of
    the whole target set (3 bytes per pixel, every rank's share) will not
    fit on the disk, instead of an ``OSError`` minutes into the pass."""
    num_images = len(getattr(dataloader, 'dataset', dataloader))
    needed = num_images * pixels_per_image * 3
    free = shutil.disk_usage(cache).free
    if needed > free:
        raise RuntimeError(
            f'pseudo-labels: the top-1 cache of this round needs about '
            f'{needed / 2**30:.1f} GiB in {cache} ({num_images} images x '
            f'{pixels_per_image} pixels x 3 bytes; deleted when the round is '
            f'published), but only {free / 2**30:.1f} GiB are free there. '
            f'Free some space or use a work_dir on a larger disk.')


def _first_half(model, dataloader: Iterable,
                labeler: CalibratedPseudoLabeler, cache: Optional[str],
                writer: BackgroundWriter) -> None:
    """Histograms of the whole set; keeps top-1 outputs in ``cache``."""
    if cache is not None:
        os.makedirs(cache, exist_ok=True)
    for i, (probs, est, img_path) in enumerate(
            _outputs(model, dataloader, 'thresholds')):
        conf, pred = labeler.top1(probs)
        labeler.update_top1(conf, pred, est)
        if cache is not None:
            if i == 0:
                _check_cache_space(cache, conf[0].numel(), dataloader)
            path = osp.join(cache, f'{get_rank()}_{i:08d}.pt')
            writer.submit(_save_top1, conf[0].half(), pred[0].byte(), est,
                          img_path, path)
    writer.wait()


def _second_half(model, dataloader: Iterable,
                 labeler: CalibratedPseudoLabeler, thresholds,
                 round_idx: int, cache: Optional[str]):
    """Yields ``(label, prediction, img_path)`` per image, on the device
    the first half ran on (the histograms' device)."""
    device = labeler.histogram.device
    thresholds = thresholds.to(device)  # once, not per image
    if cache is None:
        for probs, est, img_path in _outputs(model, dataloader, 'labels'):
            label = labeler.label(probs, est, thresholds, round_idx)[0]
            yield label, probs[0].argmax(dim=0), img_path
        return
    prefix = f'{get_rank()}_'
    paths = [osp.join(cache, name) for name in sorted(os.listdir(cache))
             if name.startswith(prefix)]
    load = partial(_load_top1, pin=device.type == 'cuda')
    for item in prefetch(load, paths):
        conf = item['conf'][None].to(device, non_blocking=True).float()
        pred = item['pred'][None].to(device, non_blocking=True)
        label = labeler.label_top1(conf, pred, item['est'], thresholds,
                                   round_idx)[0]
        yield label, pred[0], item['img_path']


def _write_labels(labels: Iterable, labeler: CalibratedPseudoLabeler,
                  writer: BackgroundWriter, label_path) -> tuple:
    """Writes ``(label, prediction, img_path)`` items as PNGs.

    Returns:
        tuple[Tensor, Tensor]: Per-class counts of kept and of predicted
        pixels (counted where the labels are; float64, on the CPU).
    """
    num_classes = labeler.num_classes
    counts = torch.zeros(2, num_classes + 1, dtype=torch.long,
                         device=labeler.histogram.device)
    for label, pred, img_path in labels:
        # ignored pixels land in the extra last bin
        kept = label.masked_fill(label == labeler.ignore_index, num_classes)
        counts[0] += count_values(kept, num_classes + 1)
        counts[1] += count_values(pred, num_classes + 1)
        writer.submit(_write_label, label, label_path(img_path))
    kept, predicted = counts[:, :num_classes].double().cpu()
    return kept, predicted


def _writer_threads() -> int:
    """Threads for PNG and cache writes: this rank's share of the cores."""
    return max(2, min(16, (os.cpu_count() or 2) // get_world_size()))


def run_pseudo_label_pass(model, dataloader: Iterable,
                          labeler: CalibratedPseudoLabeler, round_idx: int,
                          out_root: str, img_dir: str,
                          img_suffix: str) -> Dict:
    """Builds round ``round_idx``'s pseudo-labels, or reuses finished ones.

    Args:
        model: The segmentor (possibly DDP-wrapped), in eval mode, with a
            value head (its predictions carry ``est_ece``).
        dataloader (Iterable): Target images without annotations; each rank
            sees its shard.
        labeler (CalibratedPseudoLabeler): Thresholds and selection.
        round_idx (int): The round.
        out_root (str): ``work_dir/pseudo_labels``.
        img_dir (str): Image root, to mirror sub-folders in label names.
        img_suffix (str): Image suffix, replaced by ``.png``.

    Returns:
        dict: The round summary (thresholds, class weights, kept fractions
        and pixel counts, the seconds of the two halves); the labels are in
        :func:`round_dir`.
    """
    summary = load_round(out_root, round_idx)
    if summary:
        print_log(f'pseudo-labels: reusing finished round {round_idx} in '
                  f'{round_dir(out_root, round_idx)}', logger='current')
        return summary
    final, tmp = round_dir(out_root, round_idx), round_dir(
        out_root, round_idx) + '.tmp'
    if is_main_process() and osp.isdir(tmp):
        shutil.rmtree(tmp)  # an interrupted pass: redo it
    barrier()

    cache = osp.join(tmp, '.outputs') \
        if labeler.selection == 'calibrated' else None
    labeler.reset()
    start = time.perf_counter()
    with BackgroundWriter(_writer_threads()) as writer:
        _first_half(model, dataloader, labeler, cache, writer)
        thresholds = labeler.thresholds(round_idx)  # syncs the device
        halfway = time.perf_counter()
        kept, predicted = _write_labels(
            _second_half(model, dataloader, labeler, thresholds, round_idx,
                         cache), labeler, writer,
            lambda path: pseudo_label_path(tmp, path, img_dir, img_suffix))
    seconds = dict(thresholds=round(halfway - start, 3),
                   labels=round(time.perf_counter() - halfway, 3))
    if is_distributed():
        all_reduce(kept)
        all_reduce(predicted)

    cb_prop, local_prop = labeler.proportions(round_idx)
    summary = dict(
        round=round_idx, cb_prop=cb_prop, local_prop=local_prop,
        selection=labeler.selection,
        class_weights=[
            round(float(w), 6) for w in labeler.class_weights(thresholds)
        ],
        **labeler.summary(thresholds, kept, predicted),
        seconds=seconds)
    barrier()  # every rank's PNGs are in place
    if is_main_process():
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
        with open(osp.join(tmp, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, final)
        kept_all = float(kept.sum() / predicted.sum().clamp(min=1))
        per_class = ', '.join(
            f'{c}: {t:.3f}/{f:.0%}' for c, (t, f) in enumerate(
                zip(summary['thresholds'], summary['kept_fraction'])))
        print_log(
            f'pseudo-labels round {round_idx} ({seconds["thresholds"]:.1f} s '
            f'thresholds, {seconds["labels"]:.1f} s labels on rank 0): '
            f'cb_prop={cb_prop:.3f} '
            f'local_prop={local_prop:.3f}, kept {kept_all:.1%} of pixels; '
            f'per class threshold/kept: {per_class}', logger='current')
    barrier()
    return load_round(out_root, round_idx)
