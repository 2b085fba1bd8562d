"""Index-batch sampling over in-memory tensors, sharded across DDP ranks."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatches(Dataset):
    """``dataset[list_of_indices] -> tuple of tensors``: one gather per batch, no collate."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, idx: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(idx)
        return tuple(t[index] for t in self.tensors)


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class BatchIndexSampler(Sampler[list[int]]):
    """Yields lists of indices into ``[0, n)``.

    ``shuffle=True`` (training): a permutation seeded by ``(seed, epoch)``; each of the
    ``W`` ranks takes every W-th index, truncated to ``n // W`` so all ranks step alike.
    ``shuffle=False`` (evaluation): rank ``r`` takes indices ``r, r+W, ...`` with no
    padding, so gathered metrics count every sample exactly once.
    Use with ``DataLoader(batch_size=None)`` and ``Trainer(use_distributed_sampler=False)``.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0,
                 drop_last: bool = False) -> None:
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.drop_last, self.epoch = seed, drop_last, 0
        self.skip = 0  # batches of this epoch's order to leave out once (mid-epoch resume)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        rank, world = _rank_world()
        if not self.shuffle:
            return torch.arange(rank, self.n, world)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=g)[rank::world][: self.n // world]

    def __iter__(self):
        idx = self._indices().tolist()
        stop = len(idx) - len(idx) % self.batch_size if self.drop_last else len(idx)
        first, self.skip = self.skip * self.batch_size, 0
        for start in range(first, stop, self.batch_size):
            yield idx[start : start + self.batch_size]

    def __len__(self) -> int:
        rank, world = _rank_world()
        m = self.n // world if self.shuffle else len(range(rank, self.n, world))
        return m // self.batch_size if self.drop_last else -(-m // self.batch_size)


class ResumableLoader(DataLoader):
    """A DataLoader over a ``BatchIndexSampler`` that resumes mid-epoch.

    Lightning stores ``state_dict()`` (the epoch and the batches served in it) in each
    checkpoint and hands it back through ``load_state_dict`` when training resumes; the
    next iteration over the same epoch then skips the batches already trained on, so a
    resumed run sees exactly the batches of an uninterrupted one.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._epoch, self._served, self._resume = -1, 0, None

    def __iter__(self):
        sampler = self.sampler
        state, self._resume = self._resume, None
        skip = state["served"] if state and state["epoch"] == sampler.epoch else 0
        sampler.skip = skip
        self._epoch, self._served = sampler.epoch, skip
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "served": self._served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = {"epoch": int(state["epoch"]), "served": int(state["served"])}


def batch_loader(data: TensorBatches, batch_size: int, train: bool, seed: int,
                 num_workers: int = 0) -> DataLoader:
    """A DataLoader of whole index batches: shuffled and resumable for training, in order
    for evaluation."""
    sampler = BatchIndexSampler(len(data), batch_size, shuffle=train, seed=seed)
    loader = ResumableLoader if train else DataLoader
    # its own generator: each iter() draws a worker base seed, which must not come from
    # (and shift) the global generator that the training noise uses
    return loader(data, sampler=sampler, batch_size=None, num_workers=num_workers,
                  generator=torch.Generator().manual_seed(seed))
