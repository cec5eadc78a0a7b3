"""SymmetricCELoss, NormalizedEntropyLoss, NegativeLearningLoss against
direct formulas, and inside a decode head."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS


def data(seed=0, n=2, c=5, h=6, w=7):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * 2
    label = torch.randint(0, c, (n, h, w), generator=g)
    label[torch.rand(n, h, w, generator=g) < 0.3] = 255
    return logits, label


def test_symmetric_ce_matches_definition():
    logits, label = data()
    w = torch.softmax(torch.rand(5), 0)
    loss = MODELS.build(dict(type='SymmetricCELoss', class_weight=w.tolist()))
    valid = label != 255
    p = torch.softmax(logits, 1).permute(0, 2, 3, 1)[valid]  # M x C
    y = label[valid]
    ce = -(w[y] * torch.log(p[torch.arange(len(y)), y])).sum() / w[y].sum()
    onehot = F.one_hot(y, 5).float().clamp(1e-4, 1)
    rce = -(p * torch.log(onehot)).sum(1).mean()
    ref = 0.1 * ce + 1.0 * rce
    assert float(loss(logits, label)) == pytest.approx(float(ref), rel=1e-5)


def test_symmetric_ce_label_smoothing_matches_definition():
    """The CE term's target is (1 - eps) onehot + eps / C, each pixel
    weighted by its label's class weight; the reverse CE keeps the hard
    target. Classes the batch does not label may weigh far more than the
    labelled ones (CalibratedPseudoLabeler's softmax(1 / tau)) without
    blowing the loss up."""
    logits, label = data(2)
    w = torch.tensor([1e-6, 1e-6, 0.3, 0.3, 0.4])
    label[label == 2] = 0  # the labelled classes weigh 1e-6, 0.3, 0.4
    eps = 0.2
    loss = MODELS.build(dict(type='SymmetricCELoss', class_weight=w.tolist(),
                             alpha=1.0, label_smoothing=eps))
    valid = label != 255
    p = torch.softmax(logits, 1).permute(0, 2, 3, 1)[valid]  # M x C
    y = label[valid]
    smooth = (1 - eps) * F.one_hot(y, 5).float() + eps / 5
    ce = -(w[y] * (smooth * torch.log(p)).sum(1)).sum() / w[y].sum()
    onehot = F.one_hot(y, 5).float().clamp(1e-4, 1)
    rce = -(p * torch.log(onehot)).sum(1).mean()
    ref = ce + rce
    assert float(loss(logits, label)) == pytest.approx(float(ref), rel=1e-5)
    plain = MODELS.build(dict(type='SymmetricCELoss', class_weight=w.tolist(),
                              alpha=1.0))
    assert float(plain(logits, label)) != pytest.approx(float(ref), abs=1e-3)
    # a pixel labelled with a near-zero-weight class alone
    only = torch.full_like(label, 255)
    only[0, 0, 0] = 0
    assert float(loss(logits, only)) < 100



@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_symmetric_ce_batch_that_weighs_nothing(smoothing):
    """A batch whose labelled pixels all weigh 0 (none labelled, or only
    classes whose ``softmax(1 / tau)`` weight underflowed) gives a CE term
    of 0 and finite gradients, where ``F.cross_entropy`` gives 0 / 0 = NaN;
    with tiny but non-zero weights the term is the ordinary weighted mean."""
    logits, label = data(3)
    label[label == 4] = 0  # classes 0-3 labelled, weighing nothing
    w = [0.0, 0.0, 0.0, 0.0, 1.0]
    loss = MODELS.build(dict(type='SymmetricCELoss', class_weight=w,
                             alpha=1.0, beta=0.0, label_smoothing=smoothing))
    for batch in (label, torch.full_like(label, 255)):
        z = logits.clone().requires_grad_()
        value = loss(z, batch)
        value.backward()
        assert float(value) == 0.0
        assert torch.isfinite(z.grad).all()
    assert F.cross_entropy(logits, torch.where(label == 255, -100, label),
                           weight=torch.tensor(w),
                           ignore_index=-100).isnan()
    tiny = torch.tensor([4e-7, 1e-6, 2e-7, 3e-7, 1 - 1.9e-6])
    loss.class_weight = tiny
    if smoothing == 0:
        want = F.cross_entropy(logits, torch.where(label == 255, -100, label),
                               weight=tiny, ignore_index=-100)
        assert float(loss(logits, label)) == pytest.approx(float(want),
                                                           rel=1e-5)
    assert 0 < float(loss(logits, label)) < 100


def test_symmetric_ce_label_smoothing_checked():
    with pytest.raises(ValueError, match='label_smoothing=1.0'):
        MODELS.build(dict(type='SymmetricCELoss', label_smoothing=1.0))


def test_symmetric_ce_class_weight_count_checked():
    loss = MODELS.build(dict(type='SymmetricCELoss', class_weight=[1, 2]))
    with pytest.raises(ValueError, match='2 class weights for 5 classes'):
        loss(*data())


def test_normalized_entropy_matches_definition():
    logits, _ = data(1)
    loss = MODELS.build(dict(type='NormalizedEntropyLoss', loss_weight=0.5))
    p = torch.softmax(logits, 1)
    h = -(p * torch.log(p)).sum(1)
    ref = (((h / h.max())**2 + 1e-8)**2).mean() * 0.5
    assert float(loss(logits)) == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize('name', ['NormalizedEntropyLoss',
                                  'NegativeLearningLoss'])
def test_label_free_losses_leave_padding_out(name):
    """Padded pixels (label 254) do not count, unselected ones (255) do;
    the entropy's normaliser is the maximum over image pixels."""
    logits, _ = data(3, c=6)
    label = torch.full(logits.shape[:1] + logits.shape[2:], 255)
    label[..., -3:] = 254  # right-hand padding
    loss = MODELS.build(dict(type=name))
    counting = MODELS.build(dict(type=name, padding_label=None))
    for module in (loss, counting):  # the same k in every call
        module.draw_k = lambda num_classes: 3
    padded = logits.clone()
    padded[..., -3:] = torch.randn_like(padded[..., -3:]) * 50
    value = loss(padded, label)
    cropped = loss(logits[..., :-3], label[..., :-3])
    assert float(value) == pytest.approx(float(cropped), rel=1e-6)
    # the reference (no padding label) counts them
    assert float(counting(padded, label)) != pytest.approx(float(value),
                                                           rel=1e-3)


def test_symmetric_ce_leaves_padding_and_unselected_out():
    logits, label = data(4, c=6)
    label[..., -3:] = 254
    label[:, :2] = 255
    loss = MODELS.build(dict(type='SymmetricCELoss', class_weight=[1.] * 6))
    keep = (label < 6)
    ref = MODELS.build(dict(type='SymmetricCELoss', class_weight=[1.] * 6))
    flat = logits.permute(0, 2, 3, 1)[keep][:, :, None, None]
    expected = ref(flat.permute(0, 1, 2, 3), label[keep][:, None, None])
    assert float(loss(logits, label)) == pytest.approx(float(expected),
                                                       rel=1e-5)


def test_negative_learning_matches_definition_and_seeded_rng():
    logits, _ = data(2, c=19)
    loss = MODELS.build(dict(type='NegativeLearningLoss'))
    torch.manual_seed(123)
    value = loss(logits)
    k = loss.last_k
    assert 19 // 2 - 3 <= k <= 19 // 2 + 3
    p = torch.softmax(logits, 1)
    p_n = p.sort(1, descending=True).values[:, k - 1]
    ref = -torch.log((1 - p_n).clamp(1e-5, 1)).mean()
    assert float(value) == pytest.approx(float(ref), rel=1e-5)
    # the same global seed builds a loss that draws the same k
    torch.manual_seed(0)
    again = MODELS.build(dict(type='NegativeLearningLoss'))
    torch.manual_seed(0)
    first = MODELS.build(dict(type='NegativeLearningLoss'))
    assert [again.draw_k(19) for _ in range(20)] == [
        first.draw_k(19) for _ in range(20)]
    # a loss restored from a state dict goes on drawing as the original
    restored = MODELS.build(dict(type='NegativeLearningLoss'))
    restored.load_state_dict(first.state_dict())
    assert [restored.draw_k(19) for _ in range(20)] == [
        first.draw_k(19) for _ in range(20)]
    ks = set()
    for _ in range(200):
        loss(logits[:, :, :1, :1])
        ks.add(loss.last_k)
    assert ks == set(range(6, 13))


def test_losses_in_a_decode_head_give_finite_gradients():
    head = MODELS.build(dict(
        type='DLV2Head', in_channels=4, in_index=0, dilations=(1, ),
        num_classes=5, loss_decode=[
            dict(type='SymmetricCELoss'),
            dict(type='NormalizedEntropyLoss'),
            dict(type='NegativeLearningLoss')]))
    logits, label = data(3)
    feats = torch.randn(2, 4, 6, 7, requires_grad=True)
    out = head.forward((feats, ))
    total = sum(
        loss(out, label, ignore_index=255) for loss in head.loss_decode)
    total.backward()
    assert math.isfinite(float(total.detach()))
    assert torch.isfinite(feats.grad).all()
    assert {loss.loss_name for loss in head.loss_decode} == {
        'loss_sce', 'loss_ent', 'loss_nl'}
