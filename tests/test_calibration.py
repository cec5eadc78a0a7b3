"""The calibration core against slow loop references and torchmetrics."""
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torchmetrics.functional.classification import multiclass_calibration_error

from mmseg_calsfda.calibration import (
    bin_index,
    bin_stats,
    check_labels,
    classwise_ece,
    ece_from_stats,
    imagewise_ece,
    smooth_max_confidence,
)
from mmseg_calsfda.testing.reference import loop_bin_ece, loop_classwise_ece


def random_batch(seed, n=2, c=5, h=9, w=11, scale=3.0, ignore_frac=0.2,
                 absent=(3, )):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * scale
    label = torch.randint(0, c, (n, h, w), generator=g)
    for cls in absent:  # make some classes absent
        label[label == cls] = 0
    label[torch.rand(n, h, w, generator=g) < ignore_frac] = 255
    return logits, label


@pytest.mark.parametrize('closed', ['right', 'left'])
def test_bin_index_conventions(closed):
    conf = torch.tensor([0.0, 0.05, 0.1, 0.15, 0.9, 0.95, 1.0])
    idx = bin_index(conf, 10, closed).tolist()
    if closed == 'right':  # (lo, hi]: 0.1 belongs to bin 0, 1.0 to bin 9
        assert idx == [0, 0, 0, 1, 8, 9, 9]
    else:  # [lo, hi) with 1.0 in an extra bin (torchmetrics)
        assert idx == [0, 0, 1, 1, 9, 9, 10]


def test_bin_stats_sums_per_group_and_bin():
    conf = torch.tensor([0.15, 0.17, 0.95, 0.55])
    correct = torch.tensor([1, 0, 1, 1])
    group = torch.tensor([0, 0, 1, 1])
    stats = bin_stats(conf, correct, 10, group=group, num_groups=2)
    assert stats.count.shape == (2, 10)
    assert stats.count[0, 1] == 2 and stats.count[1, 9] == 1
    assert stats.conf_sum[0, 1] == pytest.approx(0.32)
    assert stats.acc_sum[0, 1] == 1
    ece = ece_from_stats(stats)
    assert ece[0] == pytest.approx(abs(0.32 - 1) / 2)
    assert ece[1] == pytest.approx((0.05 + 0.45) / 2)


def test_empty_group_has_zero_ece():
    stats = bin_stats(torch.tensor([0.5]), torch.tensor([1]), 10,
                      group=torch.tensor([1]), num_groups=3)
    assert ece_from_stats(stats).tolist() == [0.0, 0.5, 0.0]


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('temperature', [None, 1e-5, 0.1])
@pytest.mark.parametrize('class_average', ['all', 'present'])
def test_classwise_ece_matches_loop(seed, temperature, class_average):
    logits, label = random_batch(seed)
    ours = classwise_ece(logits, label, 10, temperature, 255, class_average)
    ref = loop_classwise_ece(logits, label, 10, temperature, 255,
                             class_average)
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('temperature', [1e-5, 0.1])
def test_classwise_ece_gradient_matches_loop(seed, temperature):
    logits, label = random_batch(seed)
    ours_in = logits.clone().requires_grad_()
    classwise_ece(ours_in, label, 10, temperature).mean().backward()
    ref_in = logits.double().clone().requires_grad_()
    loop_classwise_ece(ref_in, label, 10, temperature).mean().backward()
    torch.testing.assert_close(
        ours_in.grad.double(), ref_in.grad, atol=1e-6, rtol=1e-3)


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('n_bins', [1, 10, 15])
def test_top_label_ece_matches_torchmetrics(seed, n_bins):
    logits, label = random_batch(seed, n=3, c=7)
    logits[0, 2] += 40  # saturated pixels: confidence exactly 1.0
    probs = torch.softmax(logits, dim=1)
    conf, pred = probs.max(dim=1)
    valid = label != 255
    stats = bin_stats(conf, pred == label, n_bins, weight=valid,
                      closed='left')
    ref = multiclass_calibration_error(
        probs, label, num_classes=7, n_bins=n_bins, norm='l1',
        ignore_index=255)
    assert float(ece_from_stats(stats)[0]) == pytest.approx(
        float(ref), abs=1e-5)


@pytest.mark.parametrize('seed', range(3))
def test_imagewise_ece_is_each_images_torchmetrics_ece(seed):
    """Per image: torchmetrics' top-label ECE of that image alone
    (confidences never sit on a bin edge here, so the conventions agree);
    an image without labelled pixels scores 0."""
    logits, label = random_batch(seed, n=3, c=6)
    label[2] = 255
    ours = imagewise_ece(logits, label, n_bins=10)
    probs = torch.softmax(logits, dim=1)
    for i in range(2):
        ref = multiclass_calibration_error(
            probs[i:i + 1], label[i:i + 1], num_classes=6, n_bins=10,
            norm='l1', ignore_index=255)
        assert float(ours[i]) == pytest.approx(float(ref), abs=1e-5)
    assert float(ours[2]) == 0.0
    assert not torch.allclose(ours[:2], classwise_ece(logits, label)[:2])
    # temperature 1e-5: the smooth maximum is the maximum probability
    assert torch.allclose(imagewise_ece(logits, label, temperature=1e-5),
                          ours, atol=1e-5)


def test_loop_reference_agrees_with_torchmetrics_on_one_group():
    # sanity of the reference itself, away from bin edges
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(500, 4, generator=g) * 2, dim=1)
    target = torch.randint(0, 4, (500, ), generator=g)
    conf, pred = probs.max(dim=1)
    ref = loop_bin_ece(conf.double(), pred == target, 10)
    tm = multiclass_calibration_error(probs, target, 4, n_bins=10)
    assert float(ref) == pytest.approx(float(tm), abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 6),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    scale=st.floats(0.0, 50.0),
    ignore_frac=st.floats(0.0, 1.0),
    n_bins=st.integers(1, 20),
    seed=st.integers(0, 2**16),
    class_average=st.sampled_from(['all', 'present']))
def test_classwise_ece_properties(n, c, h, w, scale, ignore_frac, n_bins,
                                  seed, class_average):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, c, h, w, generator=g) * scale).requires_grad_()
    label = torch.randint(0, c, (n, h, w), generator=g)
    label[torch.rand(n, h, w, generator=g) < ignore_frac] = 255
    # float32 vs float64 may break exact ties (argmax, bin edges) differently
    probs = torch.softmax(logits.detach(), dim=1)
    top2 = probs.topk(min(c, 2), dim=1).values
    assume(c == 1 or float((top2[:, 0] - top2[:, 1]).min()) > 1e-4)
    conf = top2[:, 0] * n_bins
    assume(float((conf - conf.round()).abs().min()) > 1e-3 or
           bool((top2[:, 0] == 1).all()))
    ece = classwise_ece(logits, label, n_bins, 1e-5, 255, class_average)
    assert ece.shape == (n, )
    assert torch.isfinite(ece).all()
    assert ((ece >= 0) & (ece <= 1)).all()
    ece.sum().backward()
    assert torch.isfinite(logits.grad).all()
    ref = loop_classwise_ece(logits.detach(), label, n_bins, 1e-5, 255,
                             class_average)
    torch.testing.assert_close(ece.detach().double(), ref, atol=1e-4,
                               rtol=0)


@pytest.mark.parametrize('case', ['all_ignored', 'single_class', 'saturated',
                                  'huge', 'bf16', 'fp16'])
def test_hostile_inputs_are_finite_and_bounded(case):
    logits, label = random_batch(0)
    if case == 'all_ignored':
        label[:] = 255
    elif case == 'single_class':
        label[label != 255] = 2
    elif case == 'saturated':
        logits = torch.zeros_like(logits)
        logits[:, 1] = 1e4
    elif case == 'huge':
        logits = logits * 1e6
    elif case == 'bf16':
        logits = logits.bfloat16()
    elif case == 'fp16':
        logits = logits.half()
    logits = logits.clone().requires_grad_()
    ece = classwise_ece(logits, label, 10, 1e-5)
    assert ece.dtype == torch.float32
    assert torch.isfinite(ece).all() and ((ece >= 0) & (ece <= 1)).all()
    ece.mean().backward()
    assert torch.isfinite(logits.grad).all()
    if case == 'all_ignored':
        assert ece.abs().sum() == 0
    if case == 'saturated':  # conf == 1.0 lands in the last (0.9, 1] bin
        probs = torch.softmax(logits.detach().float(), dim=1)
        conf = smooth_max_confidence(probs, 1e-5)
        assert (conf == 1.0).all()
        assert (bin_index(conf, 10) == 9).all()
        ref = loop_classwise_ece(logits.detach(), label, 10, 1e-5)
        torch.testing.assert_close(ece.double(), ref, atol=1e-6, rtol=0)


def test_low_precision_matches_float32():
    logits, label = random_batch(1)
    for dtype in (torch.bfloat16, torch.float16):
        low = logits.to(dtype)
        ref = classwise_ece(low.float(), label, 10, 1e-5)
        torch.testing.assert_close(classwise_ece(low, label, 10, 1e-5), ref)


def test_smooth_max_confidence_limits():
    probs = torch.softmax(torch.randn(4, 6, 3, 3), dim=1)
    sharp = smooth_max_confidence(probs, 1e-5)
    torch.testing.assert_close(sharp, probs.max(dim=1).values, atol=2e-4,
                               rtol=0)
    smooth = smooth_max_confidence(probs, 1.0)
    assert (smooth >= probs.max(dim=1).values - 1e-6).all()
    assert (smooth <= 1).all()


@pytest.mark.parametrize('temperature', [1e-5, 1e-3, 0.1, 1.0])
@pytest.mark.parametrize('dim', [0, 1])
def test_smooth_max_confidence_is_scaled_logsumexp(temperature, dim):
    """The shifted, clamped form equals ``t * logsumexp(p / t)`` (in
    float64, the textbook form) in value and gradient, ties included."""
    logits = torch.randn(3, 5, 4, 4) * 4
    logits[0, :2] = 1.0  # a tie for the maximum in image 0
    probs = torch.softmax(logits, dim=dim).requires_grad_()
    ours = smooth_max_confidence(probs, temperature, dim=dim)
    ref_in = probs.detach().double().requires_grad_()
    ref = (temperature * torch.logsumexp(ref_in / temperature,
                                         dim=dim)).clamp(max=1.0)
    torch.testing.assert_close(ours.double(), ref, atol=1e-6, rtol=0)
    weight = torch.rand_like(ours)
    (ours * weight).sum().backward()
    (ref * weight.double()).sum().backward()
    torch.testing.assert_close(probs.grad.double(), ref_in.grad, atol=1e-5,
                               rtol=1e-5)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_classwise_ece_saves_one_full_size_tensor(dtype):
    """Backward needs the probabilities, which the softmax keeps; the smooth
    maximum shares them instead of saving a tensor of its own."""
    logits, label = random_batch(0, c=19)
    logits = logits.to(dtype).requires_grad_()
    full = logits.numel() * 4  # the float32 probabilities
    storages = set()

    def pack(tensor):
        if tensor.numel() * tensor.element_size() >= full:
            storages.add(tensor.untyped_storage().data_ptr())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ece = classwise_ece(logits, label, 10, 1e-5)
    assert len(storages) == 1
    ece.mean().backward()
    assert torch.isfinite(logits.grad).all()


def test_check_labels_names_bad_values():
    label = torch.tensor([[0, 1, 255, 7]])
    with pytest.raises(ValueError, match=r'\[7\].*\[0, 5\).*ignore_index=255'):
        check_labels(label, 5, 255)
    check_labels(torch.tensor([[0, 4, 255]]), 5, 255)


def test_bin_index_names_the_bin_closings():
    with pytest.raises(ValueError, match=r"closed must be one of "
                       r"\('right', 'left'\), got 'both'"):
        bin_index(torch.rand(4), 10, closed='both')


def test_batch_split_invariance_of_stats():
    logits, label = random_batch(3, n=4)
    conf, pred = torch.softmax(logits, 1).max(1)
    whole = bin_stats(conf, pred == label, 10, weight=label != 255)
    parts = [bin_stats(conf[i:i + 1], (pred == label)[i:i + 1], 10,
                       weight=(label != 255)[i:i + 1]) for i in range(4)]
    total = parts[0] + parts[1] + parts[2] + parts[3]
    torch.testing.assert_close(whole.stack(), total.stack())
