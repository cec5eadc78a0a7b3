"""The reference settings against the official algorithms.

Each test re-expresses one step of the official Cal-SFDA code
(Jo-wang/Cal-SFDA: ``trainer/adaptive_target_trainer.py``,
``utils/func.py``, ``utils/sce.py``, ``utils/calibration.py``) here, in
the test -- nothing below is imported from the package -- and checks that
the plugin with its documented reference setting computes the same on
random inputs.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS, TASK_UTILS

C = 7


def logits_batch(seed, n=3, c=C, h=17, w=23, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g) * scale


def labels_batch(seed, n=3, c=C, h=17, w=23, ignore=0.2):
    g = torch.Generator().manual_seed(seed + 100)
    label = torch.randint(0, c, (n, h, w), generator=g)
    label[torch.rand(n, h, w, generator=g) < ignore] = 255
    return label


# --------------------------------------------------------------- official
def official_entropy_term(logits):
    """The trainer's entropy term: softmax, then an entropy that applies
    log_softmax to the probabilities; normalised by its (differentiable)
    maximum, squared, offset, squared again, averaged."""
    p = F.softmax(logits, dim=1)
    log_p = F.log_softmax(p, dim=1)
    ent = -torch.sum(p * log_p, dim=1)
    ent = ent / torch.max(ent)
    ent = ent**2.0 + 1e-8
    return (ent**2.0).mean()


def official_proportions(rounds, cb_prop=0.15, local_prop=0.1):
    """cb_prop grows in place each round, local_prop from its base."""
    out = []
    for r in range(rounds):
        if r != 0:
            cb_prop += 0.05 * r
        local = local_prop + (0.05 * r if r > 0 else 0)
        out.append((cb_prop, local))
    return out


def official_thresholds(probs, est, prop, num_cls, step=1):
    """gene_thres: per image and predicted class the sorted ECE-weighted
    confidences (every ``step``-th; the official code takes every 5th),
    pooled; the threshold is sorted[-int(n * prop)]; 0.5 if never
    predicted."""
    pooled = {}
    for i in range(probs.shape[0]):
        weight = 1 - est[i]
        conf, pred = probs[i].max(dim=0)
        conf = weight * conf
        for k in range(num_cls):
            values = sorted(conf[pred == k].tolist())
            if values:
                pooled.setdefault(k, []).extend(values[::step])
    thres = {}
    for k in range(num_cls):
        if k not in pooled:
            thres[k] = 0.5
            continue
        values = np.sort(np.array(pooled[k]))
        thres[k] = values[-int(len(values) * prop)]
    return thres


def official_labels(probs_img, thres, local_prop, num_cls):
    """thres_cb_plabel (any class's probability > its threshold) fused with
    gene_plabel_prop (the top int(prop * H * W) by max probability, >=)
    for one image of probabilities (1 x C x H x W)."""
    pred = probs_img.argmax(dim=1).squeeze(0)
    vec = torch.tensor([thres[k] for k in range(num_cls)],
                       dtype=probs_img.dtype).view(1, num_cls, 1, 1)
    mask1 = torch.gt(probs_img, vec).sum(dim=1).squeeze(0) > 0
    conf = probs_img.max(dim=1)[0].squeeze(0)
    index = int(local_prop * conf.numel()) - 1
    kth = torch.sort(conf.view(1, -1), descending=True)[0][0, index]
    mask2 = conf >= kth
    return torch.where(mask1 | mask2, pred, torch.full_like(pred, 255))


def official_sce(logits, labels, weight, num_classes, a=0.1, b=1.0):
    ce = F.cross_entropy(logits, labels, weight=weight, ignore_index=255)
    pred = torch.clamp(F.softmax(logits, dim=1), min=1e-7, max=1.0)
    onehot = F.one_hot(torch.where(labels == 255, num_classes, labels),
                       num_classes + 1)[..., :num_classes]
    onehot = torch.clamp(onehot.permute(0, 3, 1, 2).float(), min=1e-4,
                         max=1.0)
    rce = -torch.sum(pred * torch.log(onehot), dim=1)
    return a * ce + b * rce[labels != 255].mean()


def official_negative_learning(logits, k):
    """The k-th most probable class of every pixel, pushed down."""
    flat = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    p = F.softmax(flat, -1)
    _, neg = torch.topk(p, k, dim=1, sorted=True)
    s_neg = torch.log(torch.clamp(1. - p, min=1e-5, max=1.))
    return F.nll_loss(s_neg, neg[:, -1].detach())


def official_class_level_ece(logits, labels, n_bins=10, t=1e-5):
    """class_level_ece_train per image (the ECE of each class's pixels,
    confidence t * logsumexp(softmax / t), bins (lower, upper], absent
    classes 0), averaged over classes, then over images."""
    edges = torch.linspace(0, 1, n_bins + 1)
    per_image = []
    for i in range(logits.shape[0]):
        out, lab = logits[i], labels[i]
        eces = []
        for c in range(out.shape[0]):
            scores, lab_c = out[:, lab == c], lab[lab == c]
            soft = F.softmax(scores, dim=0)
            _, predictions = torch.max(soft, 0)
            confidences = t * torch.logsumexp(soft / t, dim=0)
            correct = predictions.eq(lab_c)
            ece = torch.zeros(1)
            for lo, hi in zip(edges[:-1], edges[1:]):
                in_bin = confidences.gt(lo.item()) * confidences.le(hi.item())
                prop = in_bin.float().mean()
                if prop.item() > 0:
                    ece += torch.abs(confidences[in_bin].mean() -
                                     correct[in_bin].float().mean()) * prop
            eces.append(ece)
        per_image.append(torch.mean(torch.stack(eces)))
    return torch.stack(per_image).mean()


# ------------------------------------------------------------------ tests
def test_entropy_term_reference_setting():
    logits = logits_batch(0)
    loss = MODELS.build(dict(type='NormalizedEntropyLoss',
                             double_softmax=True, padding_label=None))
    ours_in = logits.clone().requires_grad_()
    ref_in = logits.clone().requires_grad_()
    ours, ref = loss(ours_in), official_entropy_term(ref_in)
    ours.backward()
    ref.backward()
    assert float(ours) == pytest.approx(float(ref), rel=1e-5)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-4,
                               atol=1e-9)


def test_growth_reference_setting():
    labeler = TASK_UTILS.build(dict(type='CalibratedPseudoLabeler',
                                    num_classes=C, growth='reference'))
    ours = [labeler.proportions(r) for r in range(5)]
    for got, want in zip(ours, official_proportions(5)):
        assert got == pytest.approx(want)


def reference_labeler(**kwargs):
    return TASK_UTILS.build(dict(type='CalibratedPseudoLabeler',
                                 num_classes=C, selection='reference',
                                 threshold_rule='reference',
                                 growth='reference', **kwargs))


def outputs(seed, n=4, h=30, w=40):
    probs = F.softmax(logits_batch(seed, n=n, h=h, w=w), dim=1)
    est = torch.rand(n, generator=torch.Generator().manual_seed(seed)) * 0.4
    return probs, est


@pytest.mark.parametrize('round_idx', [0, 1, 3])
def test_thresholds_reference_setting(round_idx):
    """ECE-weighted per-class order statistics, taken from every pixel
    (the official code's step 1; it uses every 5th sorted value per image,
    which only estimates the same statistic)."""
    probs, est = outputs(1)
    labeler = reference_labeler()
    labeler.update(probs, est)
    labeler.begin_refinement(round_idx)
    labeler.refine(probs, est)
    tau = labeler.thresholds(round_idx)
    cb_prop, _ = official_proportions(round_idx + 1)[-1]
    want = official_thresholds(probs, est, cb_prop, C)
    assert tau.tolist() == pytest.approx([want[k] for k in range(C)],
                                         rel=0, abs=0)


def test_thresholds_use_the_ece_scaling():
    """Estimates that vary across images move the thresholds as
    (1 - e) * max p does, and differently from unscaled scores."""
    probs, est = outputs(2)
    labeler = reference_labeler()
    labeler.update(probs, est)
    labeler.begin_refinement(0)
    labeler.refine(probs, est)
    tau = labeler.thresholds(0).tolist()
    scaled = official_thresholds(probs, est, 0.15, C)
    unscaled = official_thresholds(probs, torch.zeros(4), 0.15, C)
    assert tau == [scaled[k] for k in range(C)]
    assert tau != [unscaled[k] for k in range(C)]


@pytest.mark.parametrize('round_idx', [0, 2])
def test_reference_selection_and_local_fusion(round_idx):
    probs, est = outputs(3)
    est[0] = 0  # the threshold pixels of image 0 tie with their tau
    labeler = reference_labeler()
    cb_prop, local_prop = official_proportions(round_idx + 1)[-1]
    thres = official_thresholds(probs, est, cb_prop, C)
    tau = torch.tensor([thres[k] for k in range(C)], dtype=torch.float32)
    ours = labeler.label(probs, est, tau, round_idx)
    for i in range(probs.shape[0]):
        want = official_labels(probs[i:i + 1], thres, local_prop, C)
        assert torch.equal(ours[i].long(), want)
    assert (ours != 255).any() and (ours == 255).any()


def test_symmetric_ce_reference_setting():
    logits, labels = logits_batch(4), labels_batch(4)
    weight = F.softmax(torch.rand(C), 0)
    loss = MODELS.build(dict(type='SymmetricCELoss', alpha=0.1, beta=1.0,
                             class_weight=weight.tolist()))
    ref = official_sce(logits, labels, weight, C)
    # the official RCE clips each probability at 1e-7 first: <= C * 1e-7
    # of probability mass times -log(1e-4)
    assert float(loss(logits, labels)) == pytest.approx(
        float(ref), abs=C * 1e-7 * 9.3)


@pytest.mark.parametrize('k', [1, 3, 6])
def test_negative_learning_reference_setting(k, monkeypatch):
    logits = logits_batch(5)
    loss = MODELS.build(dict(type='NegativeLearningLoss',
                             padding_label=None))
    monkeypatch.setattr(loss, 'draw_k', lambda num_classes: k)
    assert float(loss(logits)) == pytest.approx(
        float(official_negative_learning(logits, k)), rel=1e-5)


def test_diff_ece_loss_reference_setting():
    logits, labels = logits_batch(6, c=5), labels_batch(6, c=5)
    loss = MODELS.build(dict(type='DiffECELoss', n_bins=10,
                             temperature=1e-5, class_average='all'))
    assert float(loss(logits, labels)) == pytest.approx(
        float(official_class_level_ece(logits, labels)), abs=1e-6)
