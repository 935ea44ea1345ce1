"""index_batches: every row exactly once per epoch, never a one-row batch (BatchNorm)."""

import pytest
import torch

from semiad_cli.training.loop import index_batches


def test_every_row_exactly_once_and_no_single_row_batch():
    gen = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")
    for n in range(1, 301):
        for batch_size in range(1, 71):
            chunks = index_batches(n, batch_size, gen, cpu)
            rows = torch.cat(chunks)
            assert len(rows) == n, (n, batch_size)
            assert torch.equal(rows.sort().values, torch.arange(n)), (n, batch_size)
            if n > 1:
                assert min(len(c) for c in chunks) >= 2, (n, batch_size, [len(c) for c in chunks])
            assert max(len(c) for c in chunks) <= max(batch_size, 2) + 1


@pytest.mark.parametrize("n,batch_size,sizes", [(65, 32, [32, 33]), (33, 32, [33]), (64, 32, [32, 32]),
                                                (66, 32, [32, 32, 2]), (1, 32, [1]), (5, 1, [2, 3])])
def test_known_batch_sizes(n, batch_size, sizes):
    chunks = index_batches(n, batch_size, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert [len(c) for c in chunks] == sizes
