"""One pseudo-labelling pass of a self-training round, resumable.

Thresholds need statistics of the whole target set before any label can be
made, so the pass has two halves. The first runs the model over the target
set and keeps each pixel's top-1 confidence (float32, exact) and prediction
(5 bytes per pixel) -- in memory on the pass's device when the whole set
fits, else on disk (deleted when the round is published). The thresholds
are made exact with a second look at that cache, and with
``selection='calibrated'`` the labels come from it too, so the model runs
once; the reference selection needs every class's probability and runs the
model again.

``run_pseudo_label_pass`` writes round ``r``'s PNGs into
``<out_root>/round_<r>.tmp/`` and renames the folder to ``round_<r>/`` only
when every rank has finished, after writing ``summary.json``. A finished round
is reused as it is; an unfinished one (a run killed mid-pass) is removed and
redone, so the training dataset never reads a torn or mixed-round label. Its
steps: :func:`_begin_round` (clear an interrupted round),
:func:`_make_labels` (both halves), :func:`_round_summary`, and
:func:`_publish` (``summary.json``, the rename, the log line).
"""
import json
import os
import os.path as osp
import shutil
import time
from functools import partial
from typing import Callable, Dict, Iterable, NamedTuple

import torch
import torch.nn.functional as F
from mmengine.dist import (
    all_reduce,
    barrier,
    get_world_size,
    is_distributed,
    is_main_process,
)
from mmengine.logging import print_log
from torch import Tensor

from ..console import TerminalBar
from ..datasets.pseudo_label_dataset import pseudo_label_path
from ..fileio import BackgroundWriter, write_png_atomic
from .calibrated_pseudo_labeler import (
    CalibratedPseudoLabeler,
    Top1,
    count_values,
)
from .top1_cache import Top1Cache

CACHE_FOLDER = '.outputs'  # of a disk cache, inside the round's tmp folder


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


def model_outputs(model, dataloader: Iterable, desc: str):
    """Yields ``(probs 1 x C x H x W, est_ece (1,), img_path)`` per image,
    on the model's device."""
    progress = TerminalBar(len(dataloader), f'pseudo-labels ({desc})') \
        if is_main_process() else None
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
                est = torch.as_tensor(sample.est_ece).float().reshape(1)
                probs = F.softmax(logits, dim=1, dtype=torch.float32)
                yield probs, est, sample.img_path
            if progress is not None:
                progress.update()
    if progress is not None:
        progress.close()


# The per-image work below never waits for the device on the main thread:
# copies to the host happen on writer threads, reads of a disk cache run
# ahead on reader threads, and counts are sorted, not bincount-ed.


class PassCounts(NamedTuple):
    """What the two halves of a pass give, summed over ranks."""
    thresholds: Tensor  # C, float32, on the CPU
    kept: Tensor  # kept pixels per class (float64, on the CPU)
    predicted: Tensor  # predicted pixels per class (float64, on the CPU)
    top1_cache: str  # where the top-1 outputs waited: 'memory' or 'disk'
    seconds: Dict[str, float]  # of the halves on this rank


def _first_half(model, dataloader: Iterable,
                labeler: CalibratedPseudoLabeler, cache: Top1Cache,
                outputs: Callable = model_outputs) -> None:
    """Coarse histograms of the whole set; keeps top-1 outputs."""
    for probs, est, img_path in outputs(model, dataloader, 'thresholds'):
        top1 = labeler.top1(probs)
        labeler.update(top1, est)
        cache.add(top1.conf[0], top1.pred[0], est, img_path)


def _refine(labeler: CalibratedPseudoLabeler, cache: Top1Cache,
            round_idx: int) -> None:
    """The second look at the scores that makes the thresholds exact."""
    labeler.begin_refinement(round_idx)
    for conf, pred, est, _ in cache:
        labeler.refine(Top1(conf[None], pred[None]), est)


def _labels(model, dataloader: Iterable, labeler: CalibratedPseudoLabeler,
            thresholds: Tensor, round_idx: int, cache: Top1Cache,
            outputs: Callable = model_outputs):
    """Yields ``(label H x W uint8, img_path)`` per image, on the device
    the first half ran on: from the cache, or (reference selection) from
    the model again."""
    thresholds = thresholds.to(labeler.histogram.device)  # once
    if labeler.rules.needs_probabilities:
        for probs, est, img_path in outputs(model, dataloader, 'labels'):
            yield labeler.label(probs, est, thresholds, round_idx)[0], img_path
        return
    for conf, pred, est, img_path in cache:
        yield labeler.label(Top1(conf[None], pred[None]), est, thresholds,
                            round_idx)[0], img_path


def _write_label(label: Tensor, path: str) -> None:
    """Copies a label map to the host and writes it as a PNG."""
    write_png_atomic(label.cpu().numpy(), path)


def _write_labels(labels: Iterable, labeler: CalibratedPseudoLabeler,
                  writer: BackgroundWriter, label_path) -> Tensor:
    """Writes ``(label, img_path)`` items as PNGs.

    Returns:
        Tensor: Kept pixels per class (float64, on the CPU), counted on
        the labels' device.
    """
    kept = torch.zeros(256, dtype=torch.long,
                       device=labeler.histogram.device)
    for label, img_path in labels:
        kept += count_values(label, 256)
        writer.submit(_write_label, label, label_path(img_path))
    writer.wait()
    return kept[:labeler.num_classes].double().cpu()


def _writer_threads() -> int:
    """Threads for PNG and cache writes: this rank's share of the cores."""
    return max(2, min(16, (os.cpu_count() or 2) // get_world_size()))


def _begin_round(out_root: str, round_idx: int) -> str:
    """Removes what an interrupted pass of the round left; returns the
    folder its labels go to until they are published."""
    tmp = round_dir(out_root, round_idx) + '.tmp'
    if is_main_process() and osp.isdir(tmp):
        shutil.rmtree(tmp)  # an interrupted pass: redo it
    barrier()
    return tmp


def _make_labels(model, dataloader: Iterable,
                 labeler: CalibratedPseudoLabeler, round_idx: int,
                 tmp: str, label_path: Callable[[str], str], top1_cache: str,
                 outputs: Callable) -> PassCounts:
    """Both halves of the pass: thresholds, then the PNGs under ``tmp``
    (named by ``label_path(img_path)``)."""
    labeler.reset()
    start = time.perf_counter()
    with BackgroundWriter(_writer_threads()) as writer:
        cache = Top1Cache(top1_cache, osp.join(tmp, CACHE_FOLDER),
                          len(getattr(dataloader, 'dataset', dataloader)),
                          writer)
        _first_half(model, dataloader, labeler, cache, outputs)
        _refine(labeler, cache, round_idx)
        thresholds = labeler.thresholds(round_idx)  # syncs the device
        halfway = time.perf_counter()
        kept = _write_labels(
            _labels(model, dataloader, labeler, thresholds, round_idx,
                    cache, outputs), labeler, writer, label_path)
        predicted = labeler.histogram.sum(1).double().cpu()
        cache.clear()
    seconds = dict(thresholds=round(halfway - start, 3),
                   labels=round(time.perf_counter() - halfway, 3))
    if is_distributed():
        all_reduce(kept)
        all_reduce(predicted)
    return PassCounts(thresholds, kept, predicted, cache.place, seconds)


def _round_summary(labeler: CalibratedPseudoLabeler, round_idx: int,
                   counts: PassCounts) -> Dict:
    """The JSON-able summary of a round (``summary.json``)."""
    cb_prop, local_prop = labeler.proportions(round_idx)
    return dict(
        round=round_idx, cb_prop=cb_prop, local_prop=local_prop,
        selection=labeler.rules.selection, top1_cache=counts.top1_cache,
        # unrounded: the SCE trains with these weights (on resume too), and
        # softmax(1 / tau) leaves all but the least confident class near
        # 1e-7; rounding them to zero left batches without that class with
        # no weight at all (a NaN loss)
        class_weights=[
            float(w) for w in labeler.class_weights(counts.thresholds)
        ],
        **labeler.summary(counts.thresholds, counts.kept, counts.predicted),
        seconds=counts.seconds)


def _publish(tmp: str, final: str, summary: Dict,
             counts: PassCounts) -> None:
    """Once every rank's PNGs are in place: writes ``summary.json``,
    renames ``tmp`` to ``final`` and logs the round (rank 0)."""
    barrier()  # every rank's PNGs are in place
    if is_main_process():
        shutil.rmtree(osp.join(tmp, CACHE_FOLDER), ignore_errors=True)
        with open(osp.join(tmp, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, final)
        _log_round(summary, counts)
    barrier()


def _log_round(summary: Dict, counts: PassCounts) -> None:
    """One log line: the seconds, proportions, kept share, and each
    class's threshold and kept fraction."""
    seconds = summary['seconds']
    kept_all = float(counts.kept.sum() / counts.predicted.sum().clamp(min=1))
    per_class = ', '.join(
        f'{c}: {t:.3f}/{f:.0%}' for c, (t, f) in enumerate(
            zip(summary['thresholds'], summary['kept_fraction'])))
    print_log(
        f'pseudo-labels round {summary["round"]} ({seconds["thresholds"]:.1f}'
        f' s thresholds, {seconds["labels"]:.1f} s labels on rank 0): '
        f'cb_prop={summary["cb_prop"]:.3f} '
        f'local_prop={summary["local_prop"]:.3f}, kept {kept_all:.1%} of '
        f'pixels; per class threshold/kept: {per_class}', logger='current')


def check_finite(model, round_idx: int) -> None:
    """Refuses a model whose weights or BatchNorm statistics are not finite:
    a diverged training would otherwise give NaN scores, which the
    class histograms cannot count.

    One reduction over all floating-point tensors (a single host sync per
    pass).

    Args:
        model: The segmentor (possibly DDP-wrapped).
        round_idx (int): The round, for the message.

    Raises:
        FloatingPointError: Names the first tensor that is not finite.
    """
    if not isinstance(model, torch.nn.Module):
        return  # a stand-in with test_step only (tests)
    tensors = [(name, t) for name, t in [*model.named_parameters(),
                                         *model.named_buffers()]
               if t.is_floating_point()]
    if not tensors:
        return
    finite = torch.stack([torch.isfinite(t).all() for _, t in tensors])
    if bool(finite.all()):
        return
    name = tensors[int((~finite).nonzero()[0])][0]
    raise FloatingPointError(
        f'pseudo-labels round {round_idx}: the model\'s {name!r} is not '
        'finite (NaN or Inf): the training diverged. Lower the learning '
        'rate (optim_wrapper.optimizer.lr) or resume from an earlier '
        'checkpoint')


def run_pseudo_label_pass(model, dataloader: Iterable,
                          labeler: CalibratedPseudoLabeler, round_idx: int,
                          out_root: str, img_dir: str, img_suffix: str,
                          top1_cache: str = 'auto',
                          outputs: Callable = model_outputs) -> Dict:
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
        top1_cache (str): Where the top-1 outputs wait between the halves
            (:class:`Top1Cache`): ``'auto'``, ``'memory'`` or ``'disk'``.
            Defaults to ``'auto'``.
        outputs (Callable): ``outputs(model, dataloader, desc)`` yields
            ``(probs, est_ece, img_path)`` per image. An option for
            experiments (the lab); the shipped recipe leaves it at its
            default. Defaults to :func:`model_outputs`.

    Returns:
        dict: The round summary (thresholds, class weights, kept fractions
        and pixel counts, where the cache was, the seconds of the two
        halves); the labels are in :func:`round_dir`.

    Raises:
        FloatingPointError: The model's weights are not finite
            (:func:`check_finite`).
    """
    summary = load_round(out_root, round_idx)
    if summary:
        print_log(f'pseudo-labels: reusing finished round {round_idx} in '
                  f'{round_dir(out_root, round_idx)}', logger='current')
        return summary
    check_finite(model, round_idx)
    tmp = _begin_round(out_root, round_idx)
    label_path = partial(pseudo_label_path, tmp, img_dir=img_dir,
                         img_suffix=img_suffix)
    counts = _make_labels(model, dataloader, labeler, round_idx, tmp,
                          label_path, top1_cache, outputs)
    _publish(tmp, round_dir(out_root, round_idx),
             _round_summary(labeler, round_idx, counts), counts)
    return load_round(out_root, round_idx)
