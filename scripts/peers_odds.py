"""Peer libraries' detectors on semiad's own ODDS splits, seed by seed (issue 14's "beat the peers").

Issue 14 lists peer figures (PyOD, DeepOD) from seeds 1-3 of the peers' own splits. This script fits
those peers on exactly the rows a semiad run uses (the same ``load_split`` as ``semiad train``, so the
same seed draws the same training part, labeled anomalies and test part), so that semiad's table and
the peers' can be compared at any number of seeds. The peers are *not* project dependencies: install
them somewhere else and point ``--peers-path`` at it (appended to ``sys.path``, so the project's own
numpy / scikit-learn / torch still win):

    pip install --target /work/peers_pkgs pyod==3.6.7
    pip install --no-deps --target /work/peers_pkgs deepod==0.4.1
    python scripts/peers_odds.py --peers-path /work/peers_pkgs --seeds 1 2 3 4 5 6 7 8 9 10 \
        --out outputs/peers/odds.csv

Unsupervised peers (ECOD) fit on the whole training part, as semiad's IForest and OC-SVM do; the
semi-supervised ones (DeepOD's DeepSAD and DevNet) get the labeled anomalies as y = 1 and every other
training row as y = 0, with their library defaults. Rows are appended as fits finish.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from sklearn.metrics import average_precision_score, roc_auc_score

from semiad_cli.cli import CONFIG_DIR
from semiad_cli.tasks.common import load_split, seed_everything

DATASETS = ["arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid"]


def _ecod(seed: int):
    from pyod.models.ecod import ECOD
    return ECOD()


def _deepod_deepsad(seed: int):
    from deepod.models.tabular import DeepSAD
    return DeepSAD(device="cpu", random_state=seed, verbose=0)


def _deepod_devnet(seed: int):
    from deepod.models.tabular import DevNet
    return DevNet(device="cpu", random_state=seed, verbose=0)


#: name -> (factory, semi-supervised); a factory imports its library, so ``--help`` works without them
PEERS = {"ecod": (_ecod, False), "deepod_deepsad": (_deepod_deepsad, True), "deepod_devnet": (_deepod_devnet, True)}


def build_peer(name: str, seed: int):
    """A fresh peer detector, or an exit that names the fix when its library is not installed."""
    try:
        return PEERS[name][0](seed)
    except ImportError as exc:
        raise SystemExit(f"{exc}: install the peers into a separate folder (see this script's docstring) "
                         "and pass it as --peers-path") from exc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers-path", type=Path, required=True, help="where pyod / deepod are installed")
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS))
    ap.add_argument("--ratio-known-anomaly", type=float, default=0.01)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sys.path.append(str(args.peers_path))
    torch.set_num_threads(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.out.exists()
    done = set()
    if not new_file:  # rerunning the same command skips the rows already written
        with open(args.out, newline="") as fh:
            done = {(r["dataset"], r["seed"], r["peer"]) for r in csv.DictReader(fh)}
    fields = ["dataset", "seed", "peer", "n_train", "n_labeled", "fit_s", "auroc", "aupr"]
    with open(args.out, "a", newline="") as fh, initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        writer = csv.DictWriter(fh, fieldnames=fields)
        if new_file:
            writer.writeheader()
        for dataset in args.datasets:
            for seed in args.seeds:
                todo = [peer for peer in args.peers if (dataset, str(seed), peer) not in done]
                if not todo:
                    continue
                cfg = compose(config_name="train", overrides=[
                    f"dataset={dataset}", f"seed={seed}", "dataset.split.ratio_pollution=0",
                    f"dataset.split.ratio_known_anomaly={args.ratio_known_anomaly}"])
                seed_everything(seed)
                split, _ = load_split(cfg)
                # float32 rows for the torch peers, float64 for ECOD (numpy)
                X = split.train.X.reshape(len(split.train), -1)
                Xt = split.test.X.reshape(len(split.test), -1)
                y_semi = (split.train.semi < 0).astype(int)
                for peer in todo:
                    semi_supervised = PEERS[peer][1]
                    seed_everything(seed)
                    model = build_peer(peer, seed)
                    t0 = time.perf_counter()
                    if semi_supervised:
                        model.fit(X, y_semi)
                    else:
                        model.fit(X.astype(np.float64))
                    fit_s = time.perf_counter() - t0
                    scores = model.decision_function(Xt if semi_supervised else Xt.astype(np.float64))
                    row = {"dataset": dataset, "seed": seed, "peer": peer, "n_train": len(X),
                           "n_labeled": int(y_semi.sum()), "fit_s": round(fit_s, 1),
                           "auroc": round(roc_auc_score(split.test.y, scores), 5),
                           "aupr": round(average_precision_score(split.test.y, scores), 5)}
                    writer.writerow(row)
                    fh.flush()
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
