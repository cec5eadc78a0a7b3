"""How precise are class-balanced pseudo-labels under other pixel rankings?

    python -m calsfda_lab.experiments.ranking_precision \\
        work_dirs/tune_hard_s0 \\
        [--out \\
        projects/calsfda_lab/records/experiments/ranking-hard-seed0.json] \\
        [--stage2 stage2_value_source_shift_1_1_1_it2000/iter_300.pth]

Labels the target training images once with the run's stage-2 model (BN
warm-up of backbone and value head on target, as stage 3's round 0 does),
then, for several ways of scoring a pixel, keeps each predicted class's
``share`` highest-scoring pixels (``CalibratedPseudoLabeler``'s
class-balanced rule) and measures against the benchmark's true target
training labels: the kept pixels' precision at share 0.15 (the shipped
round 0), at 0.5, and of the band between them (what a larger share
adds), overall and averaged over the predicted classes. No training: a
filter for ideas before ``stage3_variants.py`` trains with one.

Scores: ``max_p`` (the shipped ``cbst`` score), ``estECE`` (``(1 - e) *
max_p`` with the value head's per-image estimate: the shipped ``calsfda``),
``trueECE`` (the same with each image's true class-level ECE),
``trueERR`` (the same with the image's true pixel error rate: a
perfect per-image difficulty estimate), ``margin``
(top-1 minus top-2 probability), ``neg_entropy``, ``flip`` (max_p of the
probabilities averaged with the horizontally flipped image's),
``smooth`` (max_p and argmax of the probabilities averaged over a 9 x 9
window), and two from class prototypes in the backbone's last feature map
(SHOT/ProDA-style: each class's mean feature over the whole target set,
weighted by its probability): ``proto`` (label: the nearest prototype by
cosine; score: softmax of the cosines at temperature 0.1) and ``agree``
(max_p, but never kept where the nearest prototype disagrees with the
argmax: the share is then an upper bound), and ``regions`` (an oracle for
region-level voting: every pixel takes the most frequent prediction of
its true object -- a connected component of its true class -- and keeps
its max_p as score: segment voting with the true objects as
segments). An experiment: it reads target labels.
"""
import argparse
import json
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine import Config
from mmseg.registry import RUNNERS  # noqa: E402
from scipy import ndimage
from torch.utils.data import DataLoader

from mmseg_calsfda.engine.bn_warmup import warmup_bn_stats  # noqa: E402

from .. import compare  # noqa: E402
from .pseudo_label_precision import (  # noqa: E402
    image_true_labels,
    labelled_class_ece,
)

SHARES = (0.15, 0.5)


def predict(model, batch: dict) -> Tuple[torch.Tensor, torch.Tensor, str]:
    """``(probs 1 x C x H x W, est_ece (1,), img_path)`` of a one-image
    batch."""
    sample = model.test_step(batch)[0]
    probs = F.softmax(sample.seg_logits.data[None].float(), dim=1)
    return probs, torch.as_tensor(sample.est_ece).float().reshape(1), \
        sample.img_path


def features(model, batch: dict) -> torch.Tensor:
    """The backbone's last feature map, ``1 x F x h x w``, unit length
    per pixel."""
    data = model.data_preprocessor(batch, False)
    return F.normalize(model.extract_feat(data['inputs'])[-1], dim=1)


def prototypes(model, loader) -> torch.Tensor:
    """``C x F`` class prototypes: probability-weighted mean features
    over every target training image, unit length."""
    sums = None
    for batch in loader:
        feats = features(model, batch)
        probs = F.interpolate(predict(model, batch)[0], feats.shape[-2:],
                              mode='bilinear', align_corners=False)
        part = torch.einsum('nchw,nfhw->cf', probs, feats)
        sums = part if sums is None else sums + part
    return F.normalize(sums, dim=1)


def region_vote(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """``pred`` with every true object (a connected component of one true
    class in ``label``) set to its most frequent prediction."""
    pred_np, label_np = pred.numpy(), label.numpy()
    voted = pred_np.copy()
    num_classes = int(pred_np.max()) + 1
    for c in np.unique(label_np[label_np != 255]):
        objects, count = ndimage.label(label_np == c)
        inside = objects > 0
        votes = np.zeros((count + 1, num_classes), np.int64)
        np.add.at(votes, (objects[inside], pred_np[inside]), 1)
        voted[inside] = votes.argmax(1)[objects[inside]]
    return torch.from_numpy(voted)


def scores(model, batch: dict, protos: torch.Tensor
           ) -> Tuple[Dict[str, tuple], torch.Tensor]:
    """Every ranking's ``(score, prediction)`` (``H x W`` each) of one
    image, and its true label."""
    probs, est, img_path = predict(model, batch)
    cosine = torch.einsum('nfhw,cf->nchw', features(model, batch), protos)
    cosine = F.interpolate(cosine, probs.shape[-2:], mode='bilinear',
                           align_corners=False)
    proto = F.softmax(cosine / 0.1, dim=1)[0].max(0)
    flipped = dict(batch, inputs=[x.flip(-1) for x in batch['inputs']])
    probs_flip = predict(model, flipped)[0].flip(-1)
    label = torch.from_numpy(image_true_labels(img_path)).long()
    true = labelled_class_ece(probs, label)
    top2 = probs.topk(2, dim=1).values[0]
    conf, pred = probs[0].max(0)
    valid = label != 255
    error = (pred != label)[valid].float().mean()
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1)[0]
    smooth = F.avg_pool2d(probs, 9, stride=1, padding=4,
                          count_include_pad=False)[0].max(0)
    flip = ((probs + probs_flip) / 2)[0].max(0)
    ranked = dict(max_p=(conf, pred), estECE=((1 - est) * conf, pred),
                  trueECE=((1 - true) * conf, pred),
                  trueERR=((1 - error) * conf, pred),
                  margin=(top2[0] - top2[1], pred),
                  neg_entropy=(-entropy, pred), flip=tuple(flip),
                  smooth=tuple(smooth), proto=tuple(proto),
                  agree=(torch.where(proto[1] == pred, conf, -torch.inf),
                         pred),
                  regions=(conf, region_vote(pred, label)))
    return ranked, label


def kept(score: torch.Tensor, pred: torch.Tensor, share: float
         ) -> torch.Tensor:
    """The class-balanced rule: each predicted class's top ``share``."""
    mask = torch.zeros_like(pred, dtype=torch.bool)
    for c in pred.unique():
        of_c = pred == c
        values = score[of_c]
        k = int(np.ceil(share * values.numel()))
        threshold = values.topk(k).values[-1]
        mask |= of_c & (score >= threshold) & (score > -torch.inf)
    return mask


def precision(pred: torch.Tensor, label: torch.Tensor,
              mask: torch.Tensor) -> Dict[str, float]:
    """Overall and class-averaged precision of the ``mask`` pixels."""
    mask = mask & (label != 255)
    right = pred[mask] == label[mask]
    per_class = [right[pred[mask] == c].float().mean().item()
                 for c in pred[mask].unique()]
    return dict(overall=round(right.float().mean().item(), 4),
                class_mean=round(float(np.mean(per_class)), 4),
                pixels=int(mask.sum()))


def stage2_model(
    work_dir: str,
    name: str,
    modules: Optional[Sequence[str]] = None,
    checkpoint: Optional[str] = None
) -> Tuple[torch.nn.Module, DataLoader, argparse.Namespace, Config]:
    """A finished compare.py run's stage-2 model with BN statistics
    re-estimated on the target training images, in eval mode.

    Args:
        work_dir (str): The compare.py run.
        name (str): Names the (unused) stage-3 work dir of the config.
        modules (Sequence[str], optional): Whose BN statistics to
            re-estimate; by default the stage-3 hook's, as round 0 does.
        checkpoint (str, optional): Another stage-2 checkpoint, relative
            to ``work_dir`` (e.g. one ``source_shift.py`` trained); by
            default the run's own.

    Returns:
        tuple: ``(model, target training loader, the run's arguments,
        the stage-3 config)``.
    """
    run, size = compare.load_run(work_dir)
    checkpoint = checkpoint or f"stage2_value/iter_{size['value_iters']}.pth"
    if not osp.isfile(osp.join(work_dir, checkpoint)):
        raise FileNotFoundError(
            f'no stage-2 checkpoint {checkpoint} in {work_dir}')
    cfg = compare._adapting_cfg(
        run, size, osp.join(work_dir, 'data'), checkpoint, name, (1, 1))
    runner = RUNNERS.build(cfg)
    runner.load_checkpoint(cfg.load_from, map_location='cpu')
    hook = cfg.custom_hooks[0]
    loader = runner.build_dataloader(hook.dataloader, seed=run.seed)
    warmup_bn_stats(runner.model, loader, hook.bn_warmup_batches,
                    modules=hook.bn_warmup_modules
                    if modules is None else modules)
    runner.model.eval()
    return runner.model, loader, run, cfg


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='a finished calsfda_lab.compare run')
    parser.add_argument('--out', help='JSON file for the table')
    parser.add_argument('--stage2', help='another stage-2 checkpoint, '
                        "relative to work_dir (default: the run's own)")
    args = parser.parse_args()
    model, loader, run, _ = stage2_model(args.work_dir, 'ranking_precision',
                                         checkpoint=args.stage2)
    pooled: Dict[str, list] = {}
    labels = []
    with torch.no_grad():
        protos = prototypes(model, loader)
        for batch in loader:
            ranked, label = scores(model, batch, protos)
            labels.append(label.flatten())
            for name, (score, pred) in ranked.items():
                pooled.setdefault(name, []).append(
                    (score.flatten(), pred.flatten()))
    label = torch.cat(labels)
    table = {}
    for name, parts in pooled.items():
        score = torch.cat([s for s, _ in parts])
        pred = torch.cat([p for _, p in parts])
        masks = {share: kept(score, pred, share) for share in SHARES}
        row = {f'share {share}': precision(pred, label, mask)
               for share, mask in masks.items()}
        row['band 0.15-0.5'] = precision(pred, label,
                                         masks[0.5] & ~masks[0.15])
        table[name] = row
        print(f"{name:>12s}: " + ', '.join(
            f"{key} {v['overall']:.3f} (class mean {v['class_mean']:.3f})"
            for key, v in row.items()), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(seed=run.seed, shift=run.shift, rankings=table),
                      f, indent=2)


if __name__ == '__main__':
    main()
