"""CalibratedPseudoLabeler: quantiles, kept fractions, selection modes,
ranks, atomic writes and the resumable pass."""
import os
import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from mmseg.registry import TASK_UTILS
from PIL import Image

from mmseg_calsfda import fileio
from mmseg_calsfda.fileio import BackgroundWriter, prefetch
from mmseg_calsfda.pseudo_label import (
    CalibratedPseudoLabeler,
    Top1,
    top1_cache,
    write_png_atomic,
)
from mmseg_calsfda.pseudo_label import pseudo_label_pass as pass_mod
from mmseg_calsfda.pseudo_label.calibrated_pseudo_labeler import (
    _count_sorted,
    count_values,
)

C = 6


def outputs(seed=0, n=4, h=24, w=20):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C, h, w, generator=g) * 3
    logits[:, 5] -= 50  # class 5 never predicted
    return torch.softmax(logits, 1), torch.rand(n, generator=g) * 0.3


def build(**kwargs):
    return TASK_UTILS.build(dict(type='CalibratedPseudoLabeler',
                                 num_classes=C, **kwargs))


def scores_by_class(labeler, probs, est):
    score, pred = labeler.scores(probs, est)
    return [score[pred == c].numpy() for c in range(C)]


def refined_thresholds(labeler, probs, est, round_idx, batches=2):
    """The documented use: pass 1, the refinement look, thresholds."""
    chunks = list(zip(probs.chunk(batches), est.chunk(batches)))
    for p, e in chunks:
        labeler.update(p, e)
    labeler.begin_refinement(round_idx)
    for p, e in chunks:
        labeler.refine(p, e)
    return labeler.thresholds(round_idx)


def kth_largest(scores, cb_prop):
    """The reference quantile: the ceil(cb_prop * n)-th largest score."""
    k = int(np.ceil(len(scores) * cb_prop - 1e-6))
    return np.sort(scores)[::-1][k - 1]


@pytest.mark.parametrize('round_idx', [0, 1, 3])
def test_refined_thresholds_are_exact_order_statistics(round_idx):
    labeler = build()
    probs, est = outputs(h=120, w=100)
    tau = refined_thresholds(labeler, probs, est, round_idx)
    cb_prop, _ = labeler.proportions(round_idx)
    for c, s in enumerate(scores_by_class(labeler, probs, est)):
        if len(s) == 0:
            assert tau[c] == 0.5  # never predicted
            continue
        assert float(tau[c]) == kth_largest(s, cb_prop)  # bit for bit


def test_the_first_look_locates_the_quantile_bf16_bin():
    labeler = build()
    probs, est = outputs(h=120, w=100)
    labeler.update(probs, est)
    labeler.begin_refinement(0)
    coarse = labeler._bins.coarse
    for c, s in enumerate(scores_by_class(labeler, probs, est)):
        if len(s):
            ref = np.float32(kth_largest(s, 0.15))
            assert int(coarse[c]) == int(ref.view(np.int32)) >> 16


def issue_saturated_outputs(seed=0, n=20, h=32, w=32, classes=5):
    """Issue #30's outputs: 20 images of 5 classes whose top logit leads
    by 9 +- 2.5 (a third of the pixels have 1 - p < 2.4e-4), every
    estimate 0.1."""
    g = torch.Generator().manual_seed(seed)
    top = torch.randint(0, classes, (n, 1, h, w), generator=g)
    lead = 9 + 2.5 * torch.randn(n, 1, h, w, generator=g)
    logits = torch.zeros(n, classes, h, w).scatter_(1, top, lead)
    return torch.softmax(logits, 1), torch.full((n, ), 0.1)


def test_thresholds_need_the_second_look_on_saturated_outputs():
    """Without refine(), no threshold guessed inside the coarse bin keeps
    about cb_prop (a linear one kept nothing): thresholds() says what to
    call; with it, every class keeps 15 %."""
    probs, est = issue_saturated_outputs()
    assert (1 - probs.max(1).values < 2.4e-4).float().mean() > 0.3
    labeler = CalibratedPseudoLabeler(num_classes=5, cb_prop=0.15,
                                      local_prop=0.0)
    labeler.update(probs, est)
    with pytest.raises(RuntimeError, match=r'thresholds\(0\) needs the '
                       r'second look.*begin_refinement\(0\), then refine'):
        labeler.thresholds(0)
    labeler.begin_refinement(0)
    with pytest.raises(RuntimeError, match=r'refine\(\) saw 0 scores of '
                       r'class 0 in its quantile bin, update\(\) [1-9]'):
        labeler.thresholds(0)  # begun, but no second look
    labeler.refine(probs[:10], est[:10])
    with pytest.raises(RuntimeError, match='saw [1-9][0-9]* scores'):
        labeler.thresholds(0)  # half of it
    labeler.refine(probs[10:], est[10:])
    with pytest.raises(RuntimeError, match=r'thresholds\(1\) needs'):
        labeler.thresholds(1)  # refined for round 0
    tau = labeler.thresholds(0)
    label = labeler.label(probs, est, tau, 0)
    score, pred = labeler.scores(probs, est)
    for c in range(5):
        s = score[pred == c]
        assert 0 < float(tau[c]) <= float(s.max())
        k = int(np.ceil(len(s) * 0.15 - 1e-6))
        assert int((label == c).sum()) == int((s >= tau[c]).sum()) >= k
        assert abs(float((label == c).sum()) / len(s) - 0.15) < 0.002


def saturated_outputs(seed=0, n=4, h=60, w=50):
    """Over-confident outputs: a third of the pixels have 1 - p < 2.4e-4
    (distinct values, all within one 1/2000-wide bin near 1), and every
    image has the same ECE estimate."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C, h, w, generator=g)
    sure = torch.rand(n, h, w, generator=g) < 1 / 3
    cls = torch.randint(0, C - 1, (n, h, w), generator=g)
    boost = torch.where(sure, 9.0 + 3 * torch.rand(n, h, w, generator=g),
                        torch.zeros(n, h, w))
    logits.scatter_add_(1, cls[:, None], boost[:, None])
    probs = torch.softmax(logits * 1.5, 1)
    return probs, torch.full((n, ), 0.05)


@pytest.mark.parametrize('round_idx', [0, 2])
def test_each_class_keeps_cb_prop_up_to_ties_on_saturated_outputs(
        round_idx):
    """Where a third of a class sits inside one 1/2000-wide bin, the kept
    count is still ceil(cb_prop * n), plus only pixels tied with tau."""
    probs, est = saturated_outputs()
    conf = probs.max(1).values
    assert (1 - conf < 2.4e-4).float().mean() > 0.25  # the issue's regime
    labeler = build(local_prop=0.0, local_prop_step=0.0)
    tau = refined_thresholds(labeler, probs, est, round_idx)
    label = labeler.label(probs, est, tau, round_idx)
    score, pred = labeler.scores(probs, est)
    cb_prop, _ = labeler.proportions(round_idx)
    for c in range(C):
        s = score[pred == c]
        if c < C - 1:  # the boosted classes crowd into one top bin
            top_bin = s > float(s.max()) - 1 / 2000
            assert top_bin.float().mean() > cb_prop + 0.05
        k = int(np.ceil(len(s) * cb_prop - 1e-6))
        above, at = int((s > tau[c]).sum()), int((s == tau[c]).sum())
        assert above < k <= above + at  # tau is the k-th largest
        assert int((label == c).sum()) == above + at


def test_a_class_keeps_nothing_when_cb_prop_rounds_to_zero():
    labeler = build(cb_prop=0.0, cb_prop_step=0.0, local_prop=0.0,
                    local_prop_step=0.0)
    probs, est = outputs(2)
    tau = refined_thresholds(labeler, probs, est, 0)
    assert (labeler.label(probs, est, tau, 0) == 255).all()


def test_reference_selection_differs_exactly_as_documented():
    calibrated, reference = build(), build(selection='reference')
    probs, est = outputs(2)
    tau = refined_thresholds(calibrated, probs, est, 0)
    torch.testing.assert_close(
        tau, refined_thresholds(reference, probs, est, 0))
    a = calibrated.label(probs, est, tau, 0)
    b = reference.label(probs, est, tau, 0)
    score, pred = calibrated.scores(probs, est)
    local = calibrated.local_mask(probs.max(1).values, 0)
    keep_a = (score >= tau[pred]) | local
    keep_b = (probs >= tau.view(1, -1, 1, 1)).any(1) | local
    assert torch.equal(a != 255, keep_a) and torch.equal(b != 255, keep_b)
    assert torch.equal(a[keep_a], pred[keep_a].to(torch.uint8))
    assert torch.equal(b[keep_b], pred[keep_b].to(torch.uint8))
    # unscaled probabilities pass more easily: reference keeps a superset
    assert (keep_a & ~keep_b).sum() == 0 and (keep_b & ~keep_a).sum() > 0


def test_local_selection_keeps_top_fraction_per_image():
    labeler = build(local_prop=0.25)
    conf = torch.rand(3, 10, 10)
    mask = labeler.local_mask(conf, 0)
    assert mask.flatten(1).sum(1).tolist() == [25, 25, 25]
    for i in range(3):
        assert conf[i][mask[i]].min() >= conf[i][~mask[i]].max()


def test_growth_schedules():
    assert build().proportions(2) == pytest.approx((0.25, 0.2))
    # the reference: cb_prop cumulative, local_prop linear
    ref = build(growth='reference')
    assert [ref.proportions(r) for r in range(4)] == [
        pytest.approx(p) for p in ((0.15, 0.10), (0.20, 0.15),
                                   (0.30, 0.20), (0.45, 0.25))]


def test_class_weights_softmax_of_inverse_thresholds():
    tau = torch.tensor([0.5, 0.0, 0.9])
    w = build().class_weights(tau)
    ref = torch.softmax(1 / torch.tensor([0.5, 0.01, 0.9]), 0)
    torch.testing.assert_close(w, ref)



def test_round_summary_keeps_the_class_weights_unrounded():
    """The summary's class weights are what the SCE trains with (and what a
    resumed run reads back): one unconfident class (tau 0.063, as on a
    benchmark seed) leaves the others ~4e-7, which must not round to 0."""
    tau = torch.full((C, ), 0.83)
    tau[2] = 0.063
    labeler = build()
    counts = pass_mod.PassCounts(tau, torch.ones(C, dtype=torch.float64),
                                 torch.ones(C, dtype=torch.float64),
                                 'memory', dict(thresholds=0., labels=0.))
    summary = pass_mod._round_summary(labeler, 0, counts)
    want = labeler.class_weights(tau)
    assert 0 < float(want.min()) < 1e-6
    assert summary['class_weights'] == [float(w) for w in want]


@pytest.mark.parametrize('kwargs,match', [
    (dict(selection='any'), 'selection'), (dict(growth='exp'), 'growth'),
    (dict(local_prop=-0.1), 'local_prop'), (dict(cb_prop=1.5), 'cb_prop')])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_class_count_mismatch_is_named():
    labeler = build()
    with pytest.raises(ValueError, match='num_classes=6.*19 classes'):
        labeler.update(torch.rand(1, 19, 4, 4), torch.zeros(1))


def _rank_worker(rank, world_size, port, out_file):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size)
    labeler = CalibratedPseudoLabeler(num_classes=C)
    probs, est = outputs(3, n=6)
    mine = slice(rank, None, world_size)
    labeler.update(probs[mine], est[mine])
    labeler.begin_refinement(1)
    labeler.refine(probs[mine], est[mine])
    tau = labeler.thresholds(1)
    labels = labeler.label(probs[mine], est[mine], tau, 1)
    torch.save((tau, labels), f'{out_file}.{rank}')
    dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path, free_port):
    out = str(tmp_path / 'r')
    mp.spawn(_rank_worker, args=(2, free_port, out), nprocs=2)
    labeler = CalibratedPseudoLabeler(num_classes=C)
    probs, est = outputs(3, n=6)
    tau = refined_thresholds(labeler, probs, est, 1, batches=1)
    labels = labeler.label(probs, est, tau, 1)
    for rank in range(2):
        tau_r, labels_r = torch.load(f'{out}.{rank}')
        assert torch.equal(tau_r, tau)
        assert torch.equal(labels_r, labels[rank::2])


@pytest.mark.parametrize('kind', ['noise', 'flat', 'one_row'])
def test_label_png_reads_back_exactly(tmp_path, kind):
    rng = np.random.default_rng(0)
    label = {'noise': rng.integers(0, 256, (37, 53)),
             'flat': np.full((40, 64), 255),
             'one_row': rng.integers(0, 19, (1, 300))}[kind].astype(np.uint8)
    path = str(tmp_path / 'a' / 'x.png')
    write_png_atomic(label, path)
    with Image.open(path) as img:  # Pillow, as MMSeg's LoadAnnotations
        assert img.mode == 'L' and np.array_equal(np.array(img), label)
    assert np.array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), label)
    assert np.array_equal(
        mmcv.imfrombytes(open(path, 'rb').read(), flag='unchanged',
                         backend='pillow'), label)


def test_bad_label_array_is_named(tmp_path):
    with pytest.raises(ValueError, match='int64 of shape \\(2, 3\\)'):
        write_png_atomic(np.zeros((2, 3), np.int64), str(tmp_path / 'x.png'))
    with pytest.raises(ValueError, match='shape \\(2, 3, 3\\)'):
        write_png_atomic(np.zeros((2, 3, 3), np.uint8),
                         str(tmp_path / 'x.png'))


def test_png_write_is_atomic(tmp_path, monkeypatch):
    label = np.random.default_rng(0).integers(0, 255, (8, 9), np.uint8)
    path = str(tmp_path / 'a' / 'x.png')
    write_png_atomic(label, path)
    # a failure mid-write leaves neither a torn file nor a temporary one
    def boom(*args, **kwargs):
        raise OSError('disk full')
    monkeypatch.setattr(fileio.os, 'replace', boom)
    with pytest.raises(OSError):
        write_png_atomic(label, str(tmp_path / 'a' / 'y.png'))
    assert sorted(os.listdir(tmp_path / 'a')) == ['x.png']


def test_background_writer_finishes_and_reraises(tmp_path):
    done = []

    def write(i):
        if i == 7:
            raise OSError(f'disk full at {i}')
        done.append(i)

    with BackgroundWriter(num_threads=2, max_pending=3) as writer:
        for i in range(6):
            writer.submit(write, i)
            assert len(writer._pending) <= 3
    assert sorted(done) == list(range(6))  # all written when the block ends
    with pytest.raises(OSError, match='disk full at 7'):
        with BackgroundWriter(num_threads=2) as writer:
            writer.submit(write, 7)


def test_prefetch_yields_every_result_in_order_with_bounded_lookahead():
    started, events = [], []

    def read(i):
        started.append(i)
        return i * i

    results = []
    for value in prefetch(read, iter(range(10)), depth=3):
        results.append(value)
        events.append(max(started))
    assert results == [i * i for i in range(10)]
    # never more than ``depth`` reads ahead of the one being consumed
    assert all(ahead <= i + 3 for i, ahead in enumerate(events))
    assert list(prefetch(read, [], depth=3)) == []


def test_prefetch_reraises_and_stops_when_the_consumer_stops():
    def read(i):
        if i == 2:
            raise OSError(f'unreadable {i}')
        return i

    with pytest.raises(OSError, match='unreadable 2'):
        list(prefetch(read, range(5), depth=2))
    started = []
    gen = prefetch(started.append, range(100), depth=2)
    next(gen)
    gen.close()
    assert len(started) <= 3


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=50), st.integers(10, 13))
def test_count_values_is_bincount(values, size):
    values = torch.tensor(values, dtype=torch.uint8)
    expected = torch.bincount(values.long(), minlength=size)
    assert torch.equal(count_values(values, size), expected)
    # the GPU's way (sorting), run here on the CPU
    assert torch.equal(_count_sorted(values, size), expected)


class FakeSample:

    def __init__(self, logits, est, img_path):
        self.seg_logits = type('P', (), dict(data=logits))()
        self.est_ece = est
        self.img_path = img_path

    def __contains__(self, key):
        return hasattr(self, key)


class FakeModel:
    """test_step returns precomputed outputs; counts calls; can fail."""

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = 0, fail_after

    def test_step(self, batch):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt('killed')
        return [FakeSample(*item) for item in batch]


def fake_loader(tmp_path, n=4):
    g = torch.Generator().manual_seed(0)
    return [[(torch.randn(C, 6, 5, generator=g) * 3, 0.1,
              str(tmp_path / 'img' / 'city' / f'{i}_leftImg8bit.png'))]
            for i in range(n)]


@pytest.mark.parametrize('place', ['memory', 'disk'])
def test_pass_is_resumable(tmp_path, monkeypatch, place):
    loader = fake_loader(tmp_path)
    labeler = build()
    out = str(tmp_path / 'pl')
    img_dir = str(tmp_path / 'img')
    args = (labeler, 0, out, img_dir, '_leftImg8bit.png', place)
    # killed while writing labels: no round folder appears
    real_write, written = pass_mod.write_png_atomic, []

    def dying_write(label, path):
        if len(written) == 2:
            raise KeyboardInterrupt('killed')
        written.append(path)
        real_write(label, path)

    monkeypatch.setattr(pass_mod, 'write_png_atomic', dying_write)
    with pytest.raises(KeyboardInterrupt):
        pass_mod.run_pseudo_label_pass(FakeModel(), loader, *args)
    monkeypatch.setattr(pass_mod, 'write_png_atomic', real_write)
    assert os.listdir(out) == ['round_0.tmp']
    assert len(os.listdir(osp.join(out, 'round_0.tmp', 'city'))) == 2
    # the rerun redoes it from scratch and publishes the finished round;
    # the calibrated selection runs the model once per image
    model = FakeModel()
    summary = pass_mod.run_pseudo_label_pass(model, loader, *args)
    assert model.calls == 4
    assert sorted(os.listdir(out)) == ['round_0']
    files = sorted(os.listdir(osp.join(out, 'round_0', 'city')))
    assert files == [f'{i}.png' for i in range(4)]
    assert not osp.exists(osp.join(out, 'round_0', '.outputs'))
    assert summary['round'] == 0 and len(summary['thresholds']) == C
    # the counts in the summary are those of the written labels
    written = np.stack([np.array(Image.open(osp.join(out, 'round_0', 'city',
                                                     f)))
                        for f in files])
    assert summary['kept_pixels'] == [int((written == c).sum())
                                      for c in range(C)]
    assert sum(summary['predicted_pixels']) == written.size
    # a finished round is reused without running the model
    again = FakeModel()
    assert pass_mod.run_pseudo_label_pass(again, loader, *args) == summary
    assert again.calls == 0


class DivergedModel(torch.nn.Module):
    """A model whose training diverged: a NaN weight, a finite buffer."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Conv2d(2, C, 1)
        self.register_buffer('running_mean', torch.zeros(2))
        with torch.no_grad():
            self.head.weight[0, 0] = float('nan')

    def test_step(self, batch):  # never reached
        raise AssertionError('the pass ran a diverged model')


def test_a_diverged_model_is_refused_before_the_pass(tmp_path):
    """NaN weights would give NaN scores, which the class histograms cannot
    count (an index error deep in the pass): the pass names the tensor and
    the round instead, and writes nothing."""
    out = str(tmp_path / 'pl')
    with pytest.raises(FloatingPointError,
                       match=r"round 1: the model's 'head.weight' is not "
                       r'finite \(NaN or Inf\): the training diverged'):
        pass_mod.run_pseudo_label_pass(
            DivergedModel(), fake_loader(tmp_path), build(), 1, out,
            str(tmp_path / 'img'), '_leftImg8bit.png')
    assert not osp.exists(out)
    finite = DivergedModel()
    with torch.no_grad():
        finite.head.weight.fill_(0.5)
    pass_mod.check_finite(finite, 0)  # a finite model passes


def saturated_loader(tmp_path, n=3):
    """Fake model outputs of over-confident images (see
    :func:`saturated_outputs`)."""
    probs, _ = saturated_outputs(seed=4, n=n, h=30, w=40)
    return [[(probs[i].log(), 0.05,
              str(tmp_path / 'img' / 'city' / f'{i}_leftImg8bit.png'))]
            for i in range(n)]


@pytest.mark.parametrize('place', ['memory', 'disk'])
def test_written_labels_equal_float32_labelling(tmp_path, place):
    """Whatever the cache, the PNGs are pixel for pixel what labelling the
    float32 outputs with the round's thresholds gives -- on saturated
    outputs (confidences within 2.4e-4 of 1) too."""
    loader = saturated_loader(tmp_path)
    img_dir = str(tmp_path / 'img')
    labeler = build()
    summary = pass_mod.run_pseudo_label_pass(
        FakeModel(), loader, labeler, 1, str(tmp_path / 'a'), img_dir,
        '_leftImg8bit.png', top1_cache=place)
    assert summary['top1_cache'] == place
    tau = torch.tensor(summary['thresholds'])
    # the summary rounds tau for reading; the labels used the exact ones
    probs = torch.cat([torch.softmax(item[0][0][None].float(), 1)
                       for item in loader])
    est = torch.full((len(loader), ), 0.05)
    exact = refined_thresholds(build(), probs, est, 1, batches=1)
    torch.testing.assert_close(exact, tau, rtol=0, atol=1e-6)
    direct = build().label(probs, est, exact, 1)
    for i in range(len(loader)):
        written = np.array(Image.open(tmp_path / 'a' / 'round_1' / 'city' /
                                      f'{i}.png'))
        assert np.array_equal(written, direct[i].numpy())


def test_a_cache_that_cannot_fit_fails_before_the_pass(tmp_path,
                                                      monkeypatch):
    """'auto' goes to disk when memory is short, and a disk without room
    stops the pass at its first image, naming sizes and folder."""
    loader = fake_loader(tmp_path, n=3)
    monkeypatch.setattr(top1_cache, 'free_memory', lambda device: 100)
    monkeypatch.setattr(top1_cache.shutil, 'disk_usage',
                        lambda path: type('U', (), dict(free=100))())
    model = FakeModel()
    with pytest.raises(RuntimeError,
                       match=r'needs about 0\.0 GiB in .*round_0\.tmp.*'
                       r'3 images x 30 pixels x 5 bytes.*0\.0 GiB are free'):
        pass_mod.run_pseudo_label_pass(
            model, loader, build(), 0, str(tmp_path / 'pl'),
            str(tmp_path / 'img'), '_leftImg8bit.png')
    assert model.calls == 1  # stopped at the first image


def test_auto_cache_is_in_memory_when_it_fits(tmp_path, monkeypatch):
    loader = fake_loader(tmp_path, n=3)
    needed = 3 * 30 * 5
    for free, place in ((2 * needed, 'memory'), (2 * needed - 1, 'disk')):
        monkeypatch.setattr(top1_cache, 'free_memory', lambda device: free)
        summary = pass_mod.run_pseudo_label_pass(
            FakeModel(), loader, build(), 0, str(tmp_path / place),
            str(tmp_path / 'img'), '_leftImg8bit.png')
        assert summary['top1_cache'] == place


def test_a_bad_cache_place_is_named():
    with pytest.raises(ValueError, match="top1_cache.*'gpu'"):
        top1_cache.Top1Cache('gpu', 'x', 1, None)


def test_reference_selection_runs_the_model_twice(tmp_path):
    loader = fake_loader(tmp_path)
    model = FakeModel(fail_after=6)
    with pytest.raises(KeyboardInterrupt):  # dies in the labelling half
        pass_mod.run_pseudo_label_pass(
            model, loader, build(selection='reference'), 0,
            str(tmp_path / 'pl'), str(tmp_path / 'img'), '_leftImg8bit.png')
    assert len(os.listdir(tmp_path / 'pl' / 'round_0.tmp' / 'city')) == 2


@pytest.mark.parametrize('round_idx', [0, 2])
def test_local_selection_keeps_k_plus_ties_on_saturated_outputs(round_idx):
    """floor(local_prop * pixels) per image, plus only pixels whose float32
    confidence equals the k-th one (no rounding makes ties)."""
    probs, _ = saturated_outputs()
    conf = probs.max(1).values
    labeler = build()
    mask = labeler.local_mask(conf, round_idx)
    _, local_prop = labeler.proportions(round_idx)
    for image, kept in zip(conf.flatten(1), mask.flatten(1)):
        k = int(local_prop * image.numel() + 1e-6)
        kth = image.sort(descending=True).values[k - 1]
        above, at = int((image > kth).sum()), int((image == kth).sum())
        assert above < k <= above + at
        assert int(kept.sum()) == above + at


def test_without_ece_scaling_thresholds_and_labels_ignore_the_estimates():
    """CBST (ece_scaling=False): the class quantiles of the unscaled top-1
    probabilities, whatever the estimates; with scaling they differ."""
    probs, est = outputs(h=60, w=50)
    cbst = build(ece_scaling=False)
    tau = refined_thresholds(cbst, probs, est, 0)
    conf, pred = probs.max(1)
    for c in range(C):
        s = conf[pred == c].numpy()
        if len(s):
            assert float(tau[c]) == kth_largest(s, 0.15)
    other = build(ece_scaling=False)
    tau_other = refined_thresholds(other, probs, torch.rand(len(est)), 0)
    torch.testing.assert_close(tau, tau_other)
    labels = cbst.label(probs, est, tau, 0)
    torch.testing.assert_close(labels, other.label(
        probs, torch.zeros_like(est), tau_other, 0))
    scaled = refined_thresholds(build(), probs, est, 0)
    assert not torch.allclose(scaled, tau)


def test_reference_pseudo_labeler_is_the_three_reference_options():
    """ReferencePseudoLabeler labels as CalibratedPseudoLabeler with
    growth, selection and threshold_rule all 'reference' (schedule,
    thresholds and labels), and each can be set back on its own."""
    probs, est = outputs(5, h=60, w=50)
    options = dict(growth='reference', selection='reference',
                   threshold_rule='reference')
    for round_idx in (0, 2):
        ref = TASK_UTILS.build(dict(type='ReferencePseudoLabeler',
                                    num_classes=C))
        same = build(**options)
        assert ref.rules == same.rules
        assert ref.proportions(round_idx) == same.proportions(round_idx)
        tau = refined_thresholds(ref, probs, est, round_idx)
        assert torch.equal(tau, refined_thresholds(same, probs, est,
                                                   round_idx))
        assert torch.equal(ref.label(probs, est, tau, round_idx),
                           same.label(probs, est, tau, round_idx))
    mixed = TASK_UTILS.build(dict(type='ReferencePseudoLabeler',
                                  num_classes=C, selection='calibrated'))
    assert mixed.rules == build(**dict(options,
                                       selection='calibrated')).rules
    assert not mixed.rules.needs_probabilities


@pytest.mark.parametrize('threshold_rule', ['exact', 'reference'])
def test_top1_outputs_give_what_the_probabilities_give(threshold_rule):
    """update(), refine() and label() of a Top1 equal those of the
    probabilities it came from; the reference selection needs the
    probabilities and says so."""
    probs, est = outputs(6, h=40, w=30)
    labeler = build(threshold_rule=threshold_rule)
    top1 = labeler.top1(probs)
    tau = refined_thresholds(labeler, probs, est, 1)
    labeler.reset()
    labeler.update(top1, est)
    labeler.begin_refinement(1)
    labeler.refine(top1, est)
    assert torch.equal(labeler.thresholds(1), tau)
    assert torch.equal(labeler.label(top1, est, tau, 1),
                       labeler.label(probs, est, tau, 1))
    uint8 = Top1(top1.conf, top1.pred.to(torch.uint8))  # as cached
    assert torch.equal(labeler.label(uint8, est, tau, 1),
                       labeler.label(probs, est, tau, 1))
    reference = build(selection='reference')
    with pytest.raises(RuntimeError, match="selection='reference' needs"):
        reference.label(top1, est, tau, 1)
