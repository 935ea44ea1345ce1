"""End to end: the classifier with and without synthetic anomalies, and "+SA" for another model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from sklearn.metrics import average_precision_score

from semiad_cli.tasks import train

ROOT = Path(__file__).resolve().parents[2]


def _multirun(cli_inproc, sweep_dir: Path, *overrides: str) -> list[dict]:
    """One ``semiad train --multirun`` (in-process, sequential basic launcher), one job per combination."""
    cli_inproc("train", "--multirun", "dataset=digits", "trainer.max_epochs=2", "trainer.num_threads=1",
               "trainer.progress=false", f"hydra.sweep.dir={sweep_dir}", *overrides, check=True)
    return [json.loads((sweep_dir / str(i) / "metrics.json").read_text()) for i in range(2)]


def test_classifier_with_and_without_synthetic(tmp_path, cli_inproc):
    runs = _multirun(cli_inproc, tmp_path, "model=classifier", "synthetic.ratio=0,1")
    for i, (ratio, m) in enumerate(zip((0, 1), runs, strict=True)):
        assert m["status"] == "completed" and m["model"] == "Classifier"
        split = m["split"]
        assert split["n_val"] > 0  # the paper's 20 % validation split comes with model=classifier
        n_real_val = split["n_val"] - split["n_synthetic_val"]
        n_real_fit = split["n_train"] - n_real_val
        assert split["n_synthetic_train"] == round(ratio * n_real_fit)
        assert split["n_synthetic_val"] == round(ratio * n_real_val)
        assert split["n_train_fit"] == n_real_fit + split["n_synthetic_train"]
        per_class = m["per_class"]
        assert "synthetic" not in per_class and len(per_class) == 9  # digits: 0 normal, 9 anomaly classes
        known = [c for c, v in per_class.items() if v["known"]]
        assert known == m["known_anomaly_classes"] and len(known) == 1
        scores = pd.read_csv(tmp_path / str(i) / "scores.csv")
        for c, v in per_class.items():  # each class: its rows against the normal ones, from the scores written
            rows = scores[(scores["label"] == 0) | (scores["class"].astype(str) == c)]
            assert v["aupr"] == pytest.approx(average_precision_score(rows["label"], rows["score"])), c
        assert m["known_aupr"] == per_class[known[0]]["aupr"]
        assert m["unknown_aupr"] == pytest.approx(np.mean([v["aupr"] for c, v in per_class.items() if c not in known]))
        assert (scores["index"] >= 0).all() and "synthetic" not in set(scores["class"].astype(str))
        assert len(scores) == split["n_test"]
    assert runs[0]["split"]["n_synthetic_train"] == 0 < runs[1]["split"]["n_synthetic_train"]


def test_synthetic_for_another_model(tmp_path):
    """'+SA' is a data-pipeline option: EDE gets the synthetic rows as labeled anomalies (in-process run)."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["model=ede", "synthetic.ratio=1", "trainer=quick", "trainer.max_epochs=1",
                                          "trainer.num_threads=1", "trainer.progress=false"])
    m = train.run(cfg, tmp_path)
    assert m["model"] == "EDE" and m["split"]["n_synthetic_train"] == m["split"]["n_train"]
    assert m["split"]["n_synthetic_val"] == 0 and m["split"]["n_val"] == 0
