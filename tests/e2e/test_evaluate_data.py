"""``semiad evaluate``: a warning when the data changed since training; overrides it would ignore are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semiad_cli.cli import main
from tests.e2e.test_bad_inputs import QUICK


def _write_csv(path: Path, shift: float = 0.0) -> Path:
    rng = np.random.default_rng(0)
    labels = ["normal"] * 45 + ["attack"] * 15
    a = rng.normal(size=60) + np.where(np.array(labels) == "attack", 3.0, 0.0)
    b = rng.normal(size=60)
    b[::7] += shift  # the same file with a few values changed
    pd.DataFrame({"a": a, "b": b, "label": labels}).to_csv(path, index=False)
    return path


def test_evaluate_warns_when_the_data_differ_from_training(tmp_path: Path, cli_inproc) -> None:
    data = _write_csv(tmp_path / "table.csv")
    run = tmp_path / "run"
    cache = {"SEMIAD_CACHE_DIR": str(tmp_path / "cache")}
    proc = cli_inproc("train", *QUICK, "dataset=csv", f"dataset.source.path={data}",
                      "dataset.source.label_column=label", "dataset.source.anomaly_values=[attack]",
                      f"hydra.run.dir={run}", env=cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trained = json.loads((run / "metrics.json").read_text())["data_sha256"]
    assert len(trained["train"]) == 64 and len(trained["test"]) == 64

    same = cli_inproc("evaluate", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e1'}", env=cache)
    assert same.returncode == 0, same.stderr[-2000:]
    assert "warning" not in same.stderr
    assert json.loads((tmp_path / "e1" / "metrics.json").read_text())["data_matches_train"] is True

    _write_csv(data, shift=5.0)
    changed = cli_inproc("evaluate", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e2'}", env=cache)
    assert changed.returncode == 0, changed.stderr[-2000:]
    now = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    assert now["data_matches_train"] is False and now["data_sha256"]["test"] != trained["test"]
    warnings = [ln for ln in changed.stderr.splitlines() if ln.startswith("semiad: warning:")]
    assert len(warnings) == 1, changed.stderr
    assert trained["test"][:16] in warnings[0] and now["data_sha256"]["test"][:16] in warnings[0]


@pytest.mark.parametrize("override", ["+dataset=cardio", "+seed=3", "+model=ocsvm", "+trainer.max_epochs=3",
                                      "seed=3", "+dataset.split.normal_class=1"])
def test_evaluate_refuses_overrides_it_would_ignore(override: str, tmp_path: Path, capsys) -> None:
    code = main(["evaluate", f"run_dir={tmp_path}", override, f"hydra.run.dir={tmp_path / 'e'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"semiad: error: semiad evaluate does not take {override}")
    assert "config.yaml" in err[0] and "run_dir=" in err[0] and "data_root=" in err[0]
    assert not (tmp_path / "e").exists()
