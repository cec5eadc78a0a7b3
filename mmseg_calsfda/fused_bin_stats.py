"""The per-pixel work of the class-level ECE, fused into two GPU kernels.

:func:`mmseg_calsfda.calibration.classwise_ece` needs, per pixel, the
softmax, the (smooth) maximum probability, the prediction, the pixel's
confidence bin and ground-truth group, and then per-(group, bin) sums. As
PyTorch ops that is ~30 kernels forward and as many backward, each reading
or writing an ``N x C x H x W`` tensor; on a GPU their launches and memory
traffic cost several cross-entropies (docs/benchmarks.md). Here one Triton
kernel reads the logits once and adds each pixel's ``(weight, conf *
weight, correct * weight)`` into the sums, and one more recomputes the
softmax to write the gradient of the logits. No ``N x C x H x W`` tensor
is kept for the backward pass.

Only the sums are made here (:class:`~mmseg_calsfda.calibration.
CalibrationStats` layout, float32); ``calibration.py`` turns them into ECE
exactly as on the PyTorch path, which stays the reference and the CPU
path. The two agree to float32 rounding (tests; on a CPU through Triton's
interpreter, ``TRITON_INTERPRET=1``).
"""
import os
from typing import Any, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # Triton ships with CUDA builds of PyTorch
    triton = None

# the sums are kept in this many copies, pixel i adding into copy
# i % NUM_COPIES, so that neighbouring pixels of one bin (most pixels of an
# image fall into a few bins) do not queue on one memory address
NUM_COPIES = 32
# elements (classes x pixels) of one program's tile
TILE = 4096


def available(tensor: Tensor) -> bool:
    """Whether the fused kernels can run on ``tensor``: Triton is installed
    and the tensor is on a CUDA device (or on the CPU under Triton's
    interpreter, for tests)."""
    if triton is None:
        return False
    return tensor.is_cuda or os.environ.get('TRITON_INTERPRET') == '1'



class PixelTerms(NamedTuple):
    """What both kernels compute for a tile of pixels (Triton values;
    ``C_PAD x BLOCK`` for the per-class ones, ``BLOCK`` for the others)."""
    offsets: Any  # of the tile's logits (classes x pixels)
    tile_mask: Any  # real classes and pixels of the tile
    cls: Any  # the class index of each row (``C_PAD``)
    probs: Any  # softmax of the logits
    pred: Any  # the predicted class
    smooth: Any  # per class, the smooth maximum's weights (or ``probs``)
    total: Any  # their sum (or the top probability)
    raw: Any  # the confidence before clamping at 1
    conf: Any  # the confidence that picks the bin
    target: Any  # the ground-truth class (0 where not valid)
    w: Any  # the pixel's weight (0 where not valid)
    slot: Any  # its (image, class, bin) sum
    in_img: Any  # whether the pixel is in the image


if triton is not None:

    @triton.jit
    def _pixel_terms(logits, label, weight, bounds, n, hw, HW, temperature,
                     ignore_index, C: tl.constexpr, C_PAD: tl.constexpr,
                     N_BINS: tl.constexpr, USE_T: tl.constexpr,
                     HAS_WEIGHT: tl.constexpr):
        """Softmax, confidence, prediction, slot and weight of the pixels
        ``hw`` of image ``n`` (classes along axis 0 of the tile), as
        :class:`PixelTerms`."""
        cls = tl.arange(0, C_PAD)
        in_cls = cls < C
        in_img = hw < HW
        offsets = (n.to(tl.int64) * C * HW + cls[:, None].to(tl.int64) * HW +
                   hw[None, :])
        tile_mask = in_cls[:, None] & in_img[None, :]
        z = tl.load(logits + offsets, mask=tile_mask, other=0.0)
        z = tl.where(in_cls[:, None], z.to(tl.float32), float('-inf'))
        e = tl.exp(z - tl.max(z, axis=0)[None, :])
        e = tl.where(in_cls[:, None], e, 0.0)
        probs = e / tl.sum(e, axis=0)[None, :]
        top = tl.max(probs, axis=0)
        pred = tl.argmax(probs, axis=0)
        if USE_T:  # t * logsumexp(p / t), shifted by the maximum
            shifted = tl.maximum((probs - top[None, :]) / temperature, -80.0)
            smooth = tl.where(in_cls[:, None], tl.exp(shifted), 0.0)
            total = tl.sum(smooth, axis=0)
            raw = top + temperature * tl.log(total)
            conf = tl.minimum(raw, 1.0)
        else:
            smooth = probs
            total = top
            raw = top
            conf = top
        lab = tl.load(label + n.to(tl.int64) * HW + hw, mask=in_img,
                      other=ignore_index).to(tl.int32)
        valid = (lab != ignore_index) & (lab >= 0) & (lab < C) & in_img
        target = tl.where(valid, lab, 0)
        w = valid.to(tl.float32)
        if HAS_WEIGHT:
            w = w * tl.load(weight + n.to(tl.int64) * HW + hw, mask=in_img,
                            other=0.0).to(tl.float32)
        # bin b holds (b / n, (b + 1) / n]: count the inner edges below
        bin_idx = tl.zeros_like(target)
        for j in tl.static_range(N_BINS - 1):
            bin_idx += (conf > tl.load(bounds + j)).to(tl.int32)
        slot = (n * C + target) * N_BINS + bin_idx
        return PixelTerms(offsets=offsets, tile_mask=tile_mask, cls=cls,
                          probs=probs, pred=pred, smooth=smooth, total=total,
                          raw=raw, conf=conf, target=target, w=w, slot=slot,
                          in_img=in_img)

    @triton.jit
    def _forward_kernel(logits, label, weight, bounds, count, conf_sum,
                        acc_sum, HW, num_slots, temperature, ignore_index,
                        C: tl.constexpr, C_PAD: tl.constexpr,
                        N_BINS: tl.constexpr, BLOCK: tl.constexpr,
                        USE_T: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                        COPIES: tl.constexpr):
        n = tl.program_id(1)
        hw = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        px = _pixel_terms(logits, label, weight, bounds, n, hw, HW,
                          temperature, ignore_index, C, C_PAD, N_BINS, USE_T,
                          HAS_WEIGHT)
        where = (hw % COPIES) * num_slots + px.slot
        active = px.in_img & (px.w != 0)
        correct = (px.pred == px.target).to(tl.float32)
        tl.atomic_add(count + where, px.w, mask=active)
        tl.atomic_add(conf_sum + where, px.conf * px.w, mask=active)
        tl.atomic_add(acc_sum + where, correct * px.w, mask=active)

    @triton.jit
    def _backward_kernel(logits, label, weight, bounds, grad_conf_sum,
                         grad_logits, HW, temperature, ignore_index,
                         C: tl.constexpr, C_PAD: tl.constexpr,
                         N_BINS: tl.constexpr, BLOCK: tl.constexpr,
                         USE_T: tl.constexpr, HAS_WEIGHT: tl.constexpr):
        n = tl.program_id(1)
        hw = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        px = _pixel_terms(logits, label, weight, bounds, n, hw, HW,
                          temperature, ignore_index, C, C_PAD, N_BINS, USE_T,
                          HAS_WEIGHT)
        grad = tl.load(grad_conf_sum + px.slot, mask=px.in_img,
                       other=0.0) * px.w
        if USE_T:  # d smooth max / d p = softmax(p / t); clamp(max=1)
            grad = tl.where(px.raw <= 1.0, grad, 0.0)
            grad_probs = px.smooth / px.total[None, :] * grad[None, :]
        else:  # d max / d p: the predicted class
            grad_probs = tl.where(px.cls[:, None] == px.pred[None, :],
                                  grad[None, :], 0.0)
        inner = tl.sum(grad_probs * px.probs, axis=0)
        grad_z = px.probs * (grad_probs - inner[None, :])
        tl.store(grad_logits + px.offsets,
                 grad_z.to(grad_logits.dtype.element_ty), mask=px.tile_mask)


def _launch_args(logits: Tensor, n_bins: int,
                 temperature: Optional[float]) -> Tuple[tuple, dict]:
    """Grid and compile-time constants of both kernels."""
    num_imgs, num_classes = logits.shape[:2]
    c_pad = triton.next_power_of_2(num_classes)
    block = max(16, min(1024, TILE // c_pad))
    grid = (triton.cdiv(logits[0, 0].numel(), block), num_imgs)
    return grid, dict(C=num_classes, C_PAD=c_pad, N_BINS=n_bins, BLOCK=block,
                      USE_T=temperature is not None)


class _ClassBinStats(torch.autograd.Function):
    """Per-(image x class, bin) sums of a batch of logits; differentiable
    through ``conf_sum``."""

    @staticmethod
    def forward(ctx, logits: Tensor, label: Tensor, weight: Optional[Tensor],
                bounds: Tensor, temperature: Optional[float],
                ignore_index: int) -> Tuple[Tensor, Tensor, Tensor]:
        num_imgs, num_classes = logits.shape[:2]
        n_bins = bounds.numel() + 1
        num_slots = num_imgs * num_classes * n_bins
        sums = logits.new_zeros((3, NUM_COPIES, num_slots),
                                dtype=torch.float32)
        grid, consts = _launch_args(logits, n_bins, temperature)
        _forward_kernel[grid](
            logits, label, logits if weight is None else weight, bounds,
            sums[0], sums[1], sums[2], logits[0, 0].numel(), num_slots,
            temperature or 1.0, ignore_index, HAS_WEIGHT=weight is not None,
            COPIES=NUM_COPIES, **consts)
        count, conf_sum, acc_sum = sums.sum(1).view(3, -1, n_bins)
        ctx.save_for_backward(logits, label, weight, bounds)
        ctx.temperature, ctx.ignore_index = temperature, ignore_index
        ctx.mark_non_differentiable(count, acc_sum)
        return count, conf_sum, acc_sum

    @staticmethod
    def backward(ctx, _, grad_conf_sum: Tensor, __) -> tuple:
        logits, label, weight, bounds = ctx.saved_tensors
        grad_logits = torch.empty_like(logits)
        grid, consts = _launch_args(logits, bounds.numel() + 1,
                                    ctx.temperature)
        _backward_kernel[grid](
            logits, label, logits if weight is None else weight, bounds,
            grad_conf_sum.float().contiguous(), grad_logits,
            logits[0, 0].numel(), ctx.temperature or 1.0, ctx.ignore_index,
            HAS_WEIGHT=weight is not None, **consts)
        return grad_logits, None, None, None, None, None


def class_bin_stats(logits: Tensor, label: Tensor, bounds: Tensor,
                    temperature: Optional[float], ignore_index: int,
                    weight: Optional[Tensor] = None
                    ) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-(image x ground-truth class, bin) sums of one batch.

    Args:
        logits (Tensor): ``N x C x H x W`` logits, any float dtype.
        label (Tensor): ``N x H x W`` integer labels; ``ignore_index`` and
            values outside ``[0, C)`` are left out.
        bounds (Tensor): The ``n_bins - 1`` inner bin edges (float32, on the
            logits' device); bin ``b`` is ``(edge_b, edge_{b+1}]``.
        temperature (float, optional): Smooth-maximum temperature; ``None``
            takes the maximum probability.
        ignore_index (int): Label value to leave out.
        weight (Tensor, optional): ``N x H x W`` pixel weights (no gradient
            flows to them).

    Returns:
        tuple[Tensor]: ``count``, ``conf_sum`` (differentiable w.r.t. the
        logits) and ``acc_sum``, each ``(N * C, n_bins)`` float32.
    """
    if weight is not None:
        weight = weight.detach().contiguous()
    return _ClassBinStats.apply(logits.contiguous(), label.contiguous(),
                                weight, bounds.contiguous(), temperature,
                                ignore_index)
