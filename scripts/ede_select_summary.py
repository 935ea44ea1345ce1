"""Summarise scripts/ede_select.py CSVs: mean validation (and, for the record, test) AUROC per variant."""

from __future__ import annotations

import argparse

import pandas as pd

# CSVs written before score=standardized_rel lack its two columns; only those present are shown
SCORES = ("loss", "reference", "standardized", "standardized_rel", "rec", "rec_rel", "znorm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--by", nargs="+", default=["anomaly_reconstruction", "gcn"])
    ap.add_argument("--split", default="val", choices=["val", "test"])
    args = ap.parse_args()
    df = pd.concat([pd.read_csv(p) for p in args.csv], ignore_index=True)
    cols = [f"{args.split}_{s}" for s in SCORES if f"{args.split}_{s}" in df.columns]
    table = df.groupby(args.by)[cols].mean().mul(100).round(2)
    table["n"] = df.groupby(args.by).size()
    print(table.to_string())


if __name__ == "__main__":
    main()
