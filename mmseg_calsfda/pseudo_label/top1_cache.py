"""Each target image's top-1 confidence and prediction, kept between the
halves of a pseudo-label pass."""
import os
import os.path as osp
import shutil
from functools import partial
from typing import Iterator, Optional, Tuple

import torch
from mmengine.dist import get_rank
from torch import Tensor

from ..fileio import BackgroundWriter, prefetch
from ..utils import check_choice

PLACES = ('auto', 'memory', 'disk')
BYTES_PER_PIXEL = 5  # float32 confidence + uint8 prediction
# 'auto' keeps the cache in memory if it takes at most this share of what
# is free there when the pass starts
MEMORY_SHARE = 0.5


def free_memory(device: torch.device) -> int:
    """Bytes that new tensors can take on ``device``: free device memory
    plus what PyTorch's allocator holds unused, or the host's available
    memory."""
    if device.type == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(
            device) - torch.cuda.memory_allocated(device)
    try:
        return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError, AttributeError):  # not a POSIX host
        return 0


def _save(conf: Tensor, pred: Tensor, est: Tensor, img_path: str,
          path: str) -> None:
    """Copies an image's top-1 outputs and estimate to the host and saves
    them; runs on a writer thread."""
    torch.save(dict(conf=conf.cpu(), pred=pred.cpu(), est=est.cpu(),
                    img_path=img_path), path)


def _load(path: str, device: torch.device) -> Tuple:
    """Reads what :func:`_save` saved, pinned for an asynchronous copy when
    ``device`` is a GPU; runs on a reader thread."""
    item = torch.load(path)
    conf, pred = item['conf'], item['pred']
    if device.type == 'cuda':
        conf, pred = conf.pin_memory(), pred.pin_memory()
    return conf, pred, item['est'], item['img_path']


class Top1Cache:
    """Top-1 confidences (float32, exactly as the model gave them) and
    predictions (uint8) of a rank's target images, in pass order.

    ``place='memory'`` keeps them as tensors on the device they come from
    (a second look costs no I/O); ``'disk'`` writes one file per image into
    ``folder`` on writer threads and reads them back ahead of use;
    ``'auto'`` decides at the first image: memory if the whole set (5
    bytes per pixel) takes at most half of the free memory, else disk,
    after checking that the disk has room.

    Args:
        place (str): ``'auto'``, ``'memory'`` or ``'disk'``.
        folder (str): Where the disk cache goes.
        num_images (int): Images of this rank (for the size checks).
        writer (BackgroundWriter): Threads for the disk writes.
    """

    def __init__(self, place: str, folder: str, num_images: int,
                 writer: BackgroundWriter) -> None:
        check_choice('top1_cache', place, PLACES)
        self.place, self.folder = place, folder
        self.num_images, self.writer = num_images, writer
        self._items: list = []  # tensors, or file paths on disk
        self._device: Optional[torch.device] = None

    def __len__(self) -> int:
        return len(self._items)

    def _decide(self, conf: Tensor) -> None:
        """Chooses the place at the first image (``'auto'``) and checks
        that the disk can hold the set."""
        self._device = conf.device
        needed = self.num_images * conf.numel() * BYTES_PER_PIXEL
        if self.place == 'auto':
            fits = needed <= MEMORY_SHARE * free_memory(conf.device)
            self.place = 'memory' if fits else 'disk'
        if self.place == 'disk':
            os.makedirs(self.folder, exist_ok=True)
            self._check_space(needed, conf.numel())

    def _check_space(self, needed: int, pixels: int) -> None:
        """Fails early, naming the folder and sizes, when the cache will
        not fit on the disk, instead of an ``OSError`` minutes into the
        pass."""
        free = shutil.disk_usage(self.folder).free
        if needed > free:
            raise RuntimeError(
                f'pseudo-labels: the top-1 cache of this round needs about '
                f'{needed / 2**30:.1f} GiB in {self.folder} ({self.num_images}'
                f' images x {pixels} pixels x {BYTES_PER_PIXEL} bytes; '
                f'deleted when the round is published), but only '
                f'{free / 2**30:.1f} GiB are free there. Free some space or '
                f'use a work_dir on a larger disk.')

    def add(self, conf: Tensor, pred: Tensor, est: Tensor,
            img_path: str) -> None:
        """Keeps one image's ``H x W`` confidence and prediction and its
        estimate (``(1,)``)."""
        if self._device is None:
            self._decide(conf)
        conf, pred = conf.float(), pred.to(torch.uint8)
        if self.place == 'memory':
            self._items.append((conf, pred, est, img_path))
            return
        path = osp.join(self.folder, f'{get_rank()}_{len(self):08d}.pt')
        self.writer.submit(_save, conf, pred, est, img_path, path)
        self._items.append(path)

    def __iter__(self) -> Iterator[Tuple[Tensor, Tensor, Tensor, str]]:
        """Yields ``(conf, pred, est, img_path)`` per image, in the order
        added, the tensors on the device they came from."""
        if self.place == 'memory':
            yield from self._items
            return
        self.writer.wait()  # every file is complete
        load = partial(_load, device=self._device)
        for conf, pred, est, img_path in prefetch(load, self._items):
            yield (conf.to(self._device, non_blocking=True),
                   pred.to(self._device, non_blocking=True), est, img_path)

    def clear(self) -> None:
        """Frees the memory, or deletes this rank's files."""
        self.writer.wait()
        for item in self._items:
            if isinstance(item, str) and osp.exists(item):
                os.remove(item)
        self._items = []
