"""``semiad table`` / ``semiad plot`` on synthetic run folders with known metrics."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from semiad_cli import cli
from semiad_cli.errors import SemiadError
from semiad_cli.tables import aggregate, collect
from semiad_cli.tasks import plot, table


def make_run(folder: Path, *, model: str = "ede", dataset: str = "cardio", gamma_l: float = 0.05, seed: int = 1,
             metrics: dict | None = None, status: str = "completed", error: str = "", write_config: bool = True,
             write_metrics: bool = True, rep_dim: int | None = None, hydra_choice: bool = True) -> Path:
    """A run folder shaped like ``semiad train`` output (config.yaml, metrics.json, train.log, .hydra/)."""
    folder.mkdir(parents=True)
    if hydra_choice:  # Hydra records the ``model=`` choice; table names models by it
        (folder / ".hydra").mkdir()
        choices = {"hydra": {"runtime": {"choices": {"model": model, "dataset": dataset}}}}
        (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(choices))
    config = {
        "dataset": {"name": dataset, "source": {"_target_": "x.load", "root": f"/data/{seed}"},
                    "split": {"normal_class": 0, "ratio_known_anomaly": gamma_l, "ratio_pollution": 0.0},
                    "net": {"rep_dim": rep_dim if rep_dim is not None else (8 if dataset == "cardio" else 32)}},
        "model": {"_target_": f"semiad_cli.models.{model}.{model.upper()}", "lambda_ent": 1.0},
        "trainer": {"max_epochs": 3, "device": "auto"},
        "task_name": "train", "seed": seed, "data_root": f"/tmp/data{seed}", "run_root": "outputs",
    }
    if write_config:
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "train.log").write_text("")
    if write_metrics:
        body = {"status": status}
        if status == "completed":
            body.update(metrics or {})
            body.update({"seed": seed, "dataset": dataset, "model": model.upper()})
        else:
            body["error"] = error
        (folder / "metrics.json").write_text(json.dumps(body))
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Two models × seeds with hand-picked AUROCs, one failed and one killed job."""
    root = tmp_path / "sweep"
    root.mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n")
    aurocs = {"ede": [0.8, 0.9, 1.0], "deepsad": [0.5, 0.7]}
    job = 0
    for model, values in aurocs.items():
        for seed, value in enumerate(values, start=1):
            make_run(root / str(job), model=model, seed=seed,
                     metrics={"auroc": value, "aupr": value / 2, "known_aupr": 0.25 * seed, "unknown_aupr": None})
            job += 1
    make_run(root / str(job), model="deepsad", seed=3, status="failed", error="training diverged (NaN loss)")
    make_run(root / str(job + 1), model="ede", seed=4, write_metrics=False)  # killed: no metrics.json
    return root


def test_mean_and_sample_std_are_exact(sweep: Path) -> None:
    result = table.run([sweep], metrics=["auroc", "aupr", "known_aupr"], save=False)
    assert result.keys == ["model"]  # seed, data_root, source.root and the dataset-implied rep_dim are not settings
    rows = result.table.set_index("model")
    assert rows.loc["ede", "auroc_mean"] == pytest.approx(0.9, abs=1e-12)
    assert rows.loc["ede", "auroc_std"] == pytest.approx(0.1, abs=1e-12)  # ddof=1: sqrt(0.02/2)
    assert rows.loc["deepsad", "auroc_mean"] == pytest.approx(0.6, abs=1e-12)
    assert rows.loc["deepsad", "auroc_std"] == pytest.approx(math.sqrt(0.02), abs=1e-12)  # sqrt(0.02/1)
    assert rows.loc["ede", "aupr_mean"] == pytest.approx(0.45, abs=1e-12)
    assert rows.loc["ede", "known_aupr_mean"] == pytest.approx(0.5, abs=1e-12)  # (0.25+0.5+0.75)/3
    assert rows.loc["ede", "known_aupr_std"] == pytest.approx(0.25, abs=1e-12)
    assert rows.loc["ede", "n"] == 3 and rows.loc["deepsad", "n"] == 2
    assert rows.loc["ede", "seeds"] == "1 2 3"
    assert "| deepsad | 0.600 ± 0.141 | 0.300 ± 0.071 | 0.375 ± 0.177 | 2   | 1        |" in result.text
    assert "| ede     | 0.900 ± 0.100 | 0.450 ± 0.050 | 0.500 ± 0.250 | 3   | 1        |" in result.text


def test_failed_and_incomplete_runs_are_listed_not_averaged(sweep: Path) -> None:
    result = table.run([sweep], save=False)
    assert sorted(r.status for r in result.problems) == ["failed", "incomplete"]
    assert {r.path.name for r in result.problems} == {"5", "6"}
    rows = result.table.set_index("model")
    assert rows.loc["deepsad", "n_failed"] == 1 and rows.loc["ede", "n_failed"] == 1
    assert "Failed or incomplete runs (not averaged): 2" in result.text
    assert "training diverged (NaN loss)" in result.text
    assert "no metrics.json" in result.text


def test_job_without_metrics_json_takes_its_status_from_sweep_csv(sweep: Path) -> None:
    """A job whose metrics.json could not be written (read-only, disk full) is failed, as sweep.csv says."""
    (sweep / "sweep.csv").write_text(
        "job,overrides,status,reused,auroc,aupr,objective,wall_s,run_dir,error\n"
        f"0,seed=1,completed,False,0.8,0.4,,1.0,{sweep / '0'},\n"
        f"6,seed=4,failed,False,,,,1.0,/elsewhere/{sweep.name}/6,OSError: disk full: no space left\n")
    killed = collect.read_run(sweep / "6")
    assert killed.status == "failed"
    assert killed.error == "no metrics.json; sweep.csv says: OSError: disk full: no space left"
    result = table.run([sweep], save=False)
    assert sorted(r.status for r in result.problems) == ["failed", "failed"]
    (sweep / "sweep.csv").write_text("job,status,run_dir,error\n6,interrupted,6,terminated by SIGTERM\n")
    assert collect.read_run(sweep / "6").status == "interrupted"
    (sweep / "sweep.csv").unlink()
    assert collect.read_run(sweep / "6").status == "incomplete"  # no record anywhere: killed or still running


def test_files_next_to_the_sweep(sweep: Path) -> None:
    result = table.run([sweep], metrics=["auroc"])
    assert {f.name for f in result.files} == {"table.csv", "table.md", "table.tex", "failed.csv"}
    assert all(f.parent == sweep.resolve() for f in result.files)
    csv = pd.read_csv(sweep / "table.csv").set_index("model")
    assert csv.loc["ede", "auroc_std"] == pytest.approx(0.1, abs=1e-12)
    failed = pd.read_csv(sweep / "failed.csv")
    assert sorted(failed["status"]) == ["failed", "incomplete"]
    tex = (sweep / "table.tex").read_text()
    assert r"0.900 $\pm$ 0.100" in tex and r"\toprule" in tex and r"n\_failed" not in tex
    assert "0.900 ± 0.100" in (sweep / "table.md").read_text()
    # writing the files does not make the sweep look different next time
    again = table.run([sweep], metrics=["auroc"], save=False)
    pd.testing.assert_frame_equal(again.table, result.table)


def test_single_run_has_no_std(tmp_path: Path) -> None:
    make_run(tmp_path / "r", metrics={"auroc": 0.75, "aupr": 0.5})
    result = table.run([tmp_path / "r"], save=False)
    row = result.table.iloc[0]
    assert row["auroc_mean"] == 0.75 and math.isnan(row["auroc_std"]) and row["n"] == 1
    assert "| ede     | 0.750   | 0.500  | 1   |" in result.text


def test_varying_keys_become_rows_and_pivot(tmp_path: Path) -> None:
    for i, (dataset, model, g, seed, value) in enumerate([
        ("cardio", "ede", 0.01, 1, 0.9), ("cardio", "ede", 0.01, 2, 0.7), ("cardio", "ede", 0.05, 1, 0.95),
        ("cardio", "deepsad", 0.01, 1, 0.6), ("thyroid", "ede", 0.01, 1, 0.99), ("thyroid", "deepsad", 0.01, 1, 0.8),
    ]):
        make_run(tmp_path / "s" / str(i), dataset=dataset, model=model, gamma_l=g, seed=seed,
                 metrics={"auroc": value, "aupr": value})
    result = table.run([tmp_path / "s"], metrics=["auroc"], save=False)
    names = aggregate.short_names(result.keys)
    assert [names[k] for k in result.keys] == ["dataset", "model", "gamma_l"]  # rep_dim follows dataset: dropped
    wide = table.run([tmp_path / "s"], metrics=["auroc"], rows=["dataset"], cols=["model"], save=False)
    assert wide.text.startswith("| dataset   | deepsad   | ede               |")
    # cardio/ede pools γl 0.01 (seeds 1, 2) and 0.05: three runs, n shown in the cell
    assert "| cardio    | 0.600 (1) | 0.850 ± 0.132 (3) |" in wide.text
    with pytest.raises(SemiadError, match="unknown config key 'colour'"):
        table.run([tmp_path / "s"], rows=["colour"], save=False)


def test_all_failed_setting_still_shows(tmp_path: Path) -> None:
    make_run(tmp_path / "s" / "0", model="ede", metrics={"auroc": 0.9, "aupr": 0.8})
    make_run(tmp_path / "s" / "1", model="deepsad", status="failed", error="boom")
    result = table.run([tmp_path / "s"], save=False)
    rows = result.table.set_index("model")
    assert rows.loc["deepsad", "n"] == 0 and rows.loc["deepsad", "n_failed"] == 1
    assert "| deepsad | —" in result.text


def test_model_named_by_class_without_hydra_record(tmp_path: Path) -> None:
    make_run(tmp_path / "s" / "0", model="ede", metrics={"auroc": 0.9, "aupr": 0.8}, hydra_choice=False)
    make_run(tmp_path / "s" / "1", model="deepsad", metrics={"auroc": 0.7, "aupr": 0.6}, hydra_choice=False)
    result = table.run([tmp_path / "s"], save=False)
    assert result.table["model"].tolist() == ["DEEPSAD", "EDE"]


def test_failed_run_without_config_is_listed(tmp_path: Path) -> None:
    make_run(tmp_path / "s" / "0", metrics={"auroc": 0.9, "aupr": 0.8})
    make_run(tmp_path / "s" / "1", status="failed", error="dataset file missing", write_config=False)
    result = table.run([tmp_path / "s"], save=False)
    assert [r.error for r in result.problems] == ["dataset file missing"]
    assert result.table["n"].tolist() == [1]


def test_errors_are_clear(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SemiadError, match="no run folders under"):
        table.run([empty], save=False)
    with pytest.raises(SemiadError, match="does not exist"):
        table.run([tmp_path / "missing"], save=False)
    foreign = tmp_path / "foreign" / "run1"
    foreign.mkdir(parents=True)
    (foreign / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    with pytest.raises(SemiadError, match="no semiad training runs under .*no semiad 'status'"):
        table.run([tmp_path / "foreign"], save=False)
    make_run(tmp_path / "ok", metrics={"auroc": 0.9, "aupr": 0.8})
    with pytest.raises(SemiadError, match="unknown metric 'f1'"):
        table.run([tmp_path / "ok"], metrics=["f1"], save=False)


def test_cli_error_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["table", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("semiad: error: no run folders under") and err.count("\n") == 1


def test_cli_table_prints_markdown(sweep: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["table", str(sweep), "--metric", "auroc", "--no-save", "--percent"]) == 0
    out = capsys.readouterr().out
    assert "| ede     | 90.0 ± 10.0 | 3   | 1        |" in out
    assert not (sweep / "table.csv").exists()


def write_scores(run_dir: Path, known: str = "8") -> None:
    rng = np.random.default_rng(0)
    label = np.r_[np.zeros(40, int), np.ones(30, int)]
    cls = np.r_[np.zeros(40, int), np.full(10, int(known)), np.full(20, 3)]
    score = rng.normal(size=70) + 2 * label
    pd.DataFrame({"index": np.arange(70), "label": label, "class": cls, "score": score,
                  "score_rec": score * 0.5}).to_csv(run_dir / "scores.csv", index=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["known_anomaly_classes"] = [known]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_run_plots(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "r", metrics={"auroc": 0.9, "aupr": 0.8})
    write_scores(run_dir)
    written = plot.run([run_dir])
    assert [p.name for p in written] == ["roc_pr.png", "scores_hist.png"]
    assert all(p.parent == run_dir / "plots" for p in written)
    assert _png_size(written[0])[0] > 600


def test_sweep_plot_metric_vs_gamma_l(tmp_path: Path) -> None:
    for i, (model, g, seed, value) in enumerate([("ede", 0.01, 1, 0.8), ("ede", 0.01, 2, 0.9), ("ede", 0.1, 1, 0.95),
                                                 ("deepsad", 0.01, 1, 0.7), ("deepsad", 0.1, 1, 0.75)]):
        make_run(tmp_path / "s" / str(i), model=model, gamma_l=g, seed=seed, metrics={"auroc": value, "aupr": value})
    written = plot.run([tmp_path / "s"], metrics=["auroc"])
    assert [p.name for p in written] == ["auroc_vs_gamma_l.png"]
    _png_size(written[0])


def test_plot_without_scores_is_a_clear_error(tmp_path: Path) -> None:
    make_run(tmp_path / "r", metrics={"auroc": 0.9, "aupr": 0.8})
    with pytest.raises(SemiadError, match="has no scores.csv"):
        plot.run([tmp_path / "r"])


def _cells(text: str) -> list[list[str]]:
    """The markdown table's rows (header first, rule skipped) as lists of stripped cells."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|") and not ln.startswith("|-")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def test_pivot_keeps_runs_that_lack_a_key(tmp_path: Path) -> None:
    """A key only some models have (read back as NaN) is a row of its own, shown last, with its values."""
    for i, (model, seed, eta, value) in enumerate([("ede", 1, None, 0.8), ("ede", 2, None, 1.0),
                                                   ("deepsad", 1, 1.0, 0.6), ("deepsad", 2, 2.0, 0.7)]):
        run_dir = make_run(tmp_path / "s" / str(i), model=model, seed=seed, metrics={"auroc": value, "aupr": value})
        if eta is not None:  # deepsad's own setting: ede's config has no such key
            config = yaml.safe_load((run_dir / "config.yaml").read_text())
            config["model"]["eta"] = eta
            (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    wide = table.run([tmp_path / "s"], metrics=["auroc"], cols=["model"], save=False)
    assert _cells(wide.text) == [["eta", "deepsad", "ede"], ["1", "0.600 (1)", "—"], ["2", "0.700 (1)", "—"],
                                 ["—", "—", "0.900 ± 0.141 (2)"]]


def _imports(module: str) -> set[str]:
    """The ``semiad_cli`` modules one module imports anywhere in its file (top level or inside functions)."""
    root = Path(cli.__file__).parent.parent
    path = root / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = root / module.replace(".", "/") / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # ``from semiad_cli.tasks import table`` imports the module semiad_cli.tasks.table
            names = [f"{node.module}.{a.name}" if (root / node.module.replace(".", "/") / f"{a.name}.py").is_file()
                     else node.module for a in node.names]
        found.update(n for n in names if n.startswith("semiad_cli"))
    return found


def _reach(module: str) -> set[str]:
    seen: set[str] = set()
    todo = list(_imports(module))
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(_imports(m))
    return seen


@pytest.mark.parametrize("module", ["semiad_cli.tasks.table", "semiad_cli.tasks.plot", "semiad_cli.tables.collect",
                                    "semiad_cli.tables.aggregate", "semiad_cli.tables.render"])
def test_table_and_plot_modules_import_no_cycle(module: str) -> None:
    """Collect ← aggregate ← render ← table/plot: nothing imports back, so each step loads on its own."""
    reach = _reach(module)
    assert module not in reach
    if module != "semiad_cli.tasks.table":
        assert "semiad_cli.tasks.table" not in reach
    if module.startswith("semiad_cli.tables"):
        assert not any(m.startswith("semiad_cli.tasks") for m in reach)
