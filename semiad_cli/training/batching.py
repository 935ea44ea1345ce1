"""Row indices of one epoch, cut into batches: data stays in tensors and is batched by indexing."""

from __future__ import annotations

import torch


def index_batches(n: int, batch_size: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    """Row indices of one epoch, shuffled by ``gen`` and cut into batches; every row exactly once.

    No batch holds a single row when ``n > 1`` (BatchNorm cannot train on one row): a last batch
    of one row is merged into the one before, and ``batch_size=1`` is raised to 2.
    """
    perm = torch.randperm(n, generator=gen).to(device)
    chunks = list(torch.split(perm, max(int(batch_size), 2)))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()  # pop first: `chunks[-2] = cat([chunks[-2], chunks.pop()])` dropped a batch
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


def balanced_batches(anomalous: torch.Tensor, batch_size: int, share: float, gen: torch.Generator,
                     device: torch.device) -> list[torch.Tensor]:
    """Batches in which labeled anomalies make up ``share`` of each batch (DeepOD-style oversampling).

    ``anomalous``: bool mask of the labeled anomalies, shape ``(n,)``. Every other row appears
    exactly once per epoch, in batches of ``batch_size − m`` rows (``m = max(1, round(share ·
    batch_size))``); each batch gets ``m`` labeled anomalies drawn with replacement. Without
    labeled anomalies this is ``index_batches`` over all rows.
    """
    mask = anomalous.cpu()
    pool = torch.nonzero(mask).flatten()
    rest = torch.nonzero(~mask).flatten()
    if len(pool) == 0 or len(rest) == 0:
        return index_batches(len(mask), batch_size, gen, device)
    m = min(max(1, round(share * batch_size)), batch_size - 1)
    rest_chunks = [rest[c] for c in index_batches(len(rest), max(batch_size - m, 1), gen, torch.device("cpu"))]
    picks = pool[torch.randint(len(pool), (len(rest_chunks), m), generator=gen)]
    return [torch.cat([chunk, pick]).to(device) for chunk, pick in zip(rest_chunks, picks, strict=True)]
