"""Choose EDE's defaults on the validation split (never on test numbers): docs/ede.md.

For each dataset × normal class × seed × training variant (anomaly_reconstruction, consistency,
gcn) one EDE is trained with ``trainer.val_fraction`` held out; the validation AUROC of every
score (``loss``, ``reference``, ``standardized``, and each part alone) is computed from the same
model, so score variants cost no extra training. Test AUROCs are written beside them for the
record only. Rows are appended to ``--out`` as runs finish, so an interrupted sweep keeps them.

    python scripts/ede_select.py --datasets mnist fashion_mnist --classes 0 3 7 --epochs 20 \
        --max-train-normal 2000 --out outputs/ede_select/images.csv

``--known-unseen`` trains on the normals alone and validates on held-out normals plus every
labeled anomaly: a class the model never saw, as the test set's unknown classes are.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from sklearn.metrics import roc_auc_score

from semiad_cli.cli import CONFIG_DIR
from semiad_cli.data.split import Part
from semiad_cli.models.ede import PARTS, SCORES, ede_score_parts
from semiad_cli.tasks.common import build, build_model, fill_data_sizes, load_split, seed_everything


def aurocs(model, part, stats: dict[str, np.ndarray]) -> dict[str, float]:
    """AUROC of each score variant and part on ``part`` (needs both labels), from its ``statistics``."""
    if not 0 < part.y.sum() < len(part):
        return {}
    parts = {name: torch.as_tensor(stats[name]) for name in PARTS}
    out = {name: roc_auc_score(part.y, stats[name]) for name in PARTS}
    for kind in SCORES:
        out[kind] = roc_auc_score(part.y, model.combine(parts, kind).numpy())
    return out


def statistics(model, part) -> dict[str, np.ndarray]:
    """Per-sample statistics of a fitted EDE on ``part``: the score parts (``rec``, ``rec_rel``, ``znorm``),
    ‖z‖ of the input's code (``zin``), ‖ẑ − z‖ (``con``) and the input's norm ‖x‖ (``xnorm``).
    Saved with ``--save-stats`` so that other scores can be computed later without training again."""

    def batch(x: torch.Tensor) -> dict[str, torch.Tensor]:
        z, x_hat, z_hat = model(x)
        return {**ede_score_parts(x, x_hat, z_hat), "zin": z.norm(dim=1), "con": (z_hat - z).norm(dim=1),
                "xnorm": x.flatten(1).norm(dim=1)}

    out = model._batched(part.X, batch)
    return {k: torch.cat([o[k] for o in out]).float().cpu().numpy() for k in out[0]}


def warm_up(model, trainer, epochs: int) -> None:
    """Train ``model``'s first ``epochs`` epochs on L_rec alone (λ_ent = λ_con = 0: an autoencoder warm-up, as
    Deep SAD pretrains one), then with its configured weights, restored by the trainer's ``on_epoch_end``.
    ``epochs`` 0 changes nothing. docs/ede.md measures it (not adopted). With ``trainer.ema_decay`` the averaged
    copy keeps the zero weights, so the recorded ``val_loss`` leaves L_ent and L_con out (it decides nothing
    here: EDE trains without early stopping)."""
    if epochs <= 0:
        return
    weights = model.lambda_ent, model.lambda_con
    model.lambda_ent = model.lambda_con = 0.0

    def restore(record: dict[str, float]) -> None:
        if record["epoch"] >= epochs:
            model.lambda_ent, model.lambda_con = weights

    trainer.on_epoch_end = restore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"])
    ap.add_argument("--classes", nargs="+", type=int, default=[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--max-train-normal", type=int, default=None)
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--anomaly-reconstruction", nargs="+", default=["skip", "input", "noise"])
    ap.add_argument("--consistency", nargs="+", default=["mean", "sum"])
    ap.add_argument("--gcn", nargs="+", default=["false"])
    ap.add_argument("--overrides", nargs="*", default=[], help="extra Hydra overrides for every run")
    ap.add_argument("--known-unseen", action="store_true",
                    help="train on the normals only and move every labeled anomaly into the validation part: "
                         "validation then measures how the model ranks an anomaly class it never saw (a proxy "
                         "for the unknown classes of the test set, from data a user has)")
    ap.add_argument("--save-stats", type=Path, default=None,
                    help="folder: one .npz per run with statistics() of the training normals, validation and "
                         "test parts (and their labels and classes)")
    ap.add_argument("--warmup-epochs", type=int, default=0,
                    help="train the first N epochs on L_rec alone (lambda_ent = lambda_con = 0), then with the "
                         "configured weights (docs/ede.md: not adopted)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.out.exists()
    done = set()
    fields = ["dataset", "normal_class", "seed", "anomaly_reconstruction", "consistency", "gcn", "known",
              "n_train", "n_val", "fit_s"] + [f"{w}_{k}" for w in ("val", "test") for k in (*SCORES, *PARTS)]
    if not new_file:  # rerunning the same command skips the rows already written
        with open(args.out, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != fields:
                sys.exit(f"{args.out} has other columns (written by an older version?): choose a new --out")
            done = {(r["dataset"], r["normal_class"], r["seed"], r["gcn"], r["anomaly_reconstruction"],
                     r["consistency"]) for r in reader}
    # checkpoints go to a folder of this process's own (two sweeps side by side must not share one),
    # removed when the sweep ends
    with (open(args.out, "a", newline="") as fh, initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"),
          tempfile.TemporaryDirectory(prefix="ede_select_ckpt_") as ckpt_tmp):
        writer = csv.DictWriter(fh, fieldnames=fields)
        if new_file:
            writer.writeheader()
        grid = itertools.product(args.datasets, args.classes, args.seeds, args.gcn, args.anomaly_reconstruction,
                                 args.consistency)
        for dataset, cls, seed, gcn, anom, cons in grid:
            if (dataset, str(cls), str(seed), gcn, anom, cons) in done:
                continue
            overrides = [f"dataset={dataset}", "model=ede", f"seed={seed}", f"dataset.split.normal_class={cls}",
                         f"dataset.split.gcn={gcn}", f"model.anomaly_reconstruction={anom}",
                         f"model.consistency={cons}", f"trainer.max_epochs={args.epochs}",
                         f"trainer.val_fraction={args.val_fraction}", f"trainer.num_threads={args.threads}",
                         "trainer.progress=false", *args.overrides]
            if args.max_train_normal:
                overrides.append(f"dataset.split.max_train_normal={args.max_train_normal}")
            cfg = compose(config_name="train", overrides=overrides)
            seed_everything(seed)
            split, _ = load_split(cfg)
            fill_data_sizes(cfg, split.sample_shape)
            trainer = build(cfg.trainer, "trainer")
            train, val = trainer.hold_out(split.train, seed)
            if args.known_unseen:
                labeled = train.semi < 0
                val = Part.concat(val, train.take(np.flatnonzero(labeled)))
                train = train.take(np.flatnonzero(~labeled))
            model = build_model(cfg)
            warm_up(model, trainer, args.warmup_epochs)
            t0 = time.perf_counter()
            trainer.fit(model, train, val, Path(ckpt_tmp), seed=seed)
            row = {"dataset": dataset, "normal_class": cls, "seed": seed, "anomaly_reconstruction": anom,
                   "consistency": cons, "gcn": gcn, "known": ",".join(map(str, split.known_anomaly_classes)),
                   "n_train": len(train), "n_val": len(val) if val is not None else 0,
                   "fit_s": round(time.perf_counter() - t0, 1)}
            # one pass over each part: the AUROCs and --save-stats both come from its statistics
            parts = {"val": val, "test": split.test}
            if args.save_stats:
                parts["train"] = train.take(np.flatnonzero(train.semi >= 0))  # the normals after_fit saw
            arrays = {}
            for name, part in parts.items():
                if part is None or len(part) == 0:
                    continue
                stats = statistics(model, part)
                if name != "train":
                    row.update({f"{name}_{k}": round(v, 5) for k, v in aurocs(model, part, stats).items()})
                arrays.update({f"{name}_{k}": v for k, v in stats.items()})
                arrays[f"{name}_y"], arrays[f"{name}_cls"] = part.y, part.cls
            if args.save_stats:
                args.save_stats.mkdir(parents=True, exist_ok=True)
                tag = f"{dataset}_c{cls}_s{seed}_gcn{gcn}_{anom}_{cons}{'_ku' if args.known_unseen else ''}"
                np.savez_compressed(args.save_stats / f"{tag}.npz", **arrays)
            writer.writerow(row)
            fh.flush()
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
