"""index_batches: every row exactly once per epoch, never a one-row batch (BatchNorm)."""

import pytest
import torch

from semiad_cli.training.batching import index_batches


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


def test_balanced_batches_hold_the_share_and_every_other_row_once():
    from semiad_cli.training.batching import balanced_batches

    anomalous = torch.zeros(203, dtype=torch.bool)
    anomalous[[5, 77, 150]] = True
    gen = torch.Generator().manual_seed(0)
    chunks = balanced_batches(anomalous, 32, 0.25, gen, torch.device("cpu"))
    for chunk in chunks:
        assert int(anomalous[chunk].sum()) == 8  # round(0.25 * 32), drawn with replacement
    rest = torch.cat([c[~anomalous[c]] for c in chunks])
    assert torch.equal(rest.sort().values, torch.nonzero(~anomalous).flatten())
    assert min(len(c) for c in chunks) >= 2


def test_balanced_batches_without_labeled_anomalies_are_plain_batches():
    from semiad_cli.training.batching import balanced_batches

    chunks = balanced_batches(torch.zeros(65, dtype=torch.bool), 32, 0.5, torch.Generator().manual_seed(1),
                              torch.device("cpu"))
    assert sorted(torch.cat(chunks).tolist()) == list(range(65))
