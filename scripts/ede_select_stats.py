"""Compare EDE scores built from per-run statistics saved by ``ede_select.py --save-stats``.

Each score is fitted on the training normals' statistics only (the model's own training data) and
evaluated on the validation part (the selection number) and the test part (for the record only):

    python scripts/ede_select_stats.py outputs/ede_select/stats --part val

Scores: ``standardized`` (the sum of the one-sided z-scores of rec and ‖ẑ‖), ``standardized_rel``
(the same plus the z-score of rec / ‖x‖², EDE's default), ``std_rel_zrel`` and ``std_rel_plus_zrel``
(‖ẑ‖ / ‖x‖ in place of ‖ẑ‖, or as a fourth z-score: docs/ede.md, not adopted), and
typicality scores: how far a sample's statistics lie from the training normals' on *either* side
(an autoencoder can reconstruct a simple anomaly better than a normal sample; Nalisnick et al. 2019,
DoSE, Morningstar et al. 2021): the Euclidean norm of the z-scores (``typ``), the same on log
statistics (``typlog``), Mahalanobis distance on log statistics (``maha``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from semiad_cli.models.ede import TINY

SETS = {"rz": ("rec", "znorm"), "rzc": ("rec", "znorm", "con"), "rzi": ("rec", "znorm", "zin"),
        "rzx": ("rec", "znorm", "xnorm")}


def feats(d, part: str, names) -> np.ndarray:
    return np.stack([d[f"{part}_{n}"].astype(np.float64) for n in names], axis=1)


def scores(d, part: str) -> dict[str, np.ndarray]:
    out = {}
    for tag, names in SETS.items():
        tr, x = feats(d, "train", names), feats(d, part, names)
        mu, sd = tr.mean(0), tr.std(0) + 1e-12
        z = (x - mu) / sd
        if tag == "rz":  # EDE's score=standardized (its std has ddof=1: the same ranking)
            out["standardized"] = z.sum(1)
            out["rec"], out["znorm"] = x[:, 0], x[:, 1]
            # EDE's score=standardized_rel: one more one-sided z-score, of rec / ‖x‖² (from the saved
            # ‖x‖, so statistics saved before rec_rel existed give it too)
            xn_tr, xn = d["train_xnorm"].astype(np.float64), d[f"{part}_xnorm"].astype(np.float64)
            rel_tr = tr[:, 0] / np.maximum(xn_tr ** 2, TINY)
            rel = x[:, 0] / np.maximum(xn ** 2, TINY)
            out["standardized_rel"] = z.sum(1) + (rel - rel_tr.mean()) / (rel_tr.std() + 1e-12)
            # ‖ẑ‖ relative to the input's size, ‖ẑ‖ / ‖x‖: on pixels ‖ẑ‖ tracks the ink as rec does
            # (METHODS.md §1); in place of ‖ẑ‖ (``std_rel_zrel``) or beside it (``std_rel_plus_zrel``)
            zrel_tr = tr[:, 1] / np.maximum(xn_tr, TINY)
            zrel = x[:, 1] / np.maximum(xn, TINY)
            zz = (zrel - zrel_tr.mean()) / (zrel_tr.std() + 1e-12)
            out["std_rel_zrel"] = out["standardized_rel"] - z[:, 1] + zz
            out["std_rel_plus_zrel"] = out["standardized_rel"] + zz
        else:
            out[f"std_{tag}"] = z.sum(1)  # one-sided, like standardized, with one more statistic
        out[f"typ_{tag}"] = np.sqrt((z ** 2).sum(1))
        ltr, lx = np.log(tr + 1e-12), np.log(x + 1e-12)
        lmu, lsd = ltr.mean(0), ltr.std(0) + 1e-12
        out[f"typlog_{tag}"] = np.sqrt((((lx - lmu) / lsd) ** 2).sum(1))
        cov = np.cov(ltr, rowvar=False) + 1e-9 * np.eye(len(names))
        diff = lx - lmu
        out[f"maha_{tag}"] = np.sqrt(np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--part", default="val", choices=["val", "test"])
    args = ap.parse_args()
    rows = {}
    for f in sorted(args.folder.glob("*.npz")):
        d = np.load(f)
        if f"{args.part}_y" not in d:
            continue
        y = d[f"{args.part}_y"]
        rows[f.stem] = {k: 100 * roc_auc_score(y, v) for k, v in scores(d, args.part).items()}
    if not rows:
        raise SystemExit(f"no runs with a {args.part} part in {args.folder}")
    keys = list(next(iter(rows.values())))
    print("run".ljust(44) + " ".join(k[:16].rjust(16) for k in keys))
    for name, r in rows.items():
        print(name[:44].ljust(44) + " ".join(f"{r[k]:16.2f}" for k in keys))
    print("mean".ljust(44) + " ".join(f"{np.mean([r[k] for r in rows.values()]):16.2f}" for k in keys))
    for base in ("standardized", "standardized_rel"):
        print(f"paired vs {base} (mean diff, wins/n):")
        for k in keys:
            diffs = np.array([r[k] - r[base] for r in rows.values()])
            print(f"  {k:16s} {diffs.mean():+6.2f}  {int((diffs > 0).sum())}/{len(diffs)}")


if __name__ == "__main__":
    main()
