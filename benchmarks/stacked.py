"""One seed vs K seeds stacked into one vectorized model (``hydra/launcher=stacked``), side by side.

    python benchmarks/stacked.py                        # K=10, Deep SAD / EDE / classifier on satellite and cardio
    python benchmarks/stacked.py --k 10 --epochs 5 --repeats 3 --models deepsad --datasets cardio

*one*: ``Trainer.fit`` of seed 1, as a run of the basic launcher trains it. *stacked*: seeds 1..K through
``training.stacked.fit_stacked``, as the stacked launcher trains a seed group (MLPs by batched matrix products,
``training/stacked_layers.py``). *vmap*: the same with the loss under ``torch.func.vmap`` (``force_vmap``,
the only way before ``stacked_layers.py``, and still the way for conv nets). Both prepare their seeds with
``tasks.train.prepare_seed`` (not timed: data loading and model construction are the same per seed either
way) and time the fit itself: ``init_from_data``, the epochs, ``after_fit`` and the final checkpoint(s).
Each model's own trainer settings (Deep SAD batch 128, EDE batch 32, classifier batch 1024), validation and
early stopping off, ``--epochs`` epochs. Every measurement runs in a fresh subprocess; one and stacked
alternate so that background load hits both alike; wall clock and the process's CPU time are both reported
(on a busy machine only the CPU time means anything). ``ratio`` = stacked time / one-seed time: K separate
runs cost K, so ``K / ratio`` is the speed-up of the sweep's training. Issue 17's targets at 1 thread:
ratio <= 3 for Deep SAD and EDE, <= 6 for the classifier (arithmetic-bound at batch 1024). ``s/epoch``: the
median epoch (history ``seconds``, first epoch left out); ``fit``: the whole fit with its fixed costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = os.environ.get("SEMIAD_CONFIG_DIR") or str(ROOT / "configs")
MODELS = {
    "deepsad": ["model=deepsad"],
    "ede": ["model=ede"],
    "classifier": ["model=classifier"],
}
DATASETS = ("satellite", "cardio")
TARGET = {"deepsad": 3.0, "ede": 3.0, "classifier": 6.0}
MODES = ("one", "stacked", "vmap")


def _cfg(model: str, dataset: str, seed: int, epochs: int, threads: int):
    from hydra import compose, initialize_config_dir

    from semiad_cli import schemas

    schemas.register()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", [*MODELS[model], f"dataset={dataset}", f"seed={seed}", f"trainer.max_epochs={epochs}",
                                 "trainer.val_fraction=0", "trainer.patience=null", "trainer.min_steps=0",
                                 f"trainer.num_threads={threads}", "trainer.device=cpu", "trainer.progress=false"])


def measure(mode: str, model: str, dataset: str, k: int, epochs: int, threads: int) -> dict:
    """One timed fit in this process (called in a fresh subprocess by ``main``)."""
    # torch.optim's first optimizer imports torch._dynamo (~1 s): once per process under either launcher,
    # so it is paid here, before the clock starts, not inside the first fit
    import torch
    import torch._dynamo  # noqa: F401

    from semiad_cli.tasks.train import prepare_seed
    from semiad_cli.training.stacked import fit_stacked

    torch.set_num_threads(threads)
    seeds = [1] if mode == "one" else list(range(1, k + 1))
    preps, states = [], []
    for seed in seeds:
        preps.append(prepare_seed(_cfg(model, dataset, seed, epochs, threads)))
        states.append(torch.get_rng_state())
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        if mode == "one":
            p = preps[0]
            p.trainer.fit(p.model, p.train, p.val, Path(tmp), seed=1)
        else:
            fit_stacked([p.trainer for p in preps], [p.model for p in preps], [p.train for p in preps],
                        [p.val for p in preps], [Path(tmp) / str(s) for s in seeds], seeds, states,
                        stack_slower=True,  # measured whatever the launcher's CPU rule says
                        force_vmap=mode == "vmap")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    history = preps[0].trainer.history
    epoch_s = statistics.median(h["seconds"] for h in history[1:] or history)  # the first epoch warms up
    return {"wall_s": wall, "cpu_s": cpu, "epoch_s": epoch_s, "rows": len(preps[0].train),
            "steps": history[-1]["steps"]}


def _run(mode: str, model: str, dataset: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--models", model, "--datasets", dataset, "--k", str(args.k),
           "--epochs", str(args.epochs), "--threads", str(args.threads)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.models, args.datasets, args.k, args.epochs, args.threads)))
        return
    print(f"K={args.k}, {args.epochs} epochs, {args.threads} thread(s), median of {args.repeats} repeats; "
          f"load {os.getloadavg()[0]:.2f}")
    print("| model | dataset | rows | steps/epoch | one s/epoch | stacked s/epoch | epoch ratio | vmap epoch ratio | "
          "one fit cpu s | stacked fit cpu s | fit cpu ratio | vmap fit cpu ratio | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for dataset in args.datasets.split(","):
            runs: dict[str, list[dict]] = {m: [] for m in MODES}
            for r in range(args.repeats):  # alternate: one, stacked, vmap / vmap, stacked, one
                for mode in (MODES if r % 2 == 0 else MODES[::-1]):
                    runs[mode].append(_run(mode, model, dataset, args))
            med = {m: {key: statistics.median(x[key] for x in v) for key in ("wall_s", "cpu_s", "epoch_s")}
                   for m, v in runs.items()}
            first = runs["one"][0]
            one, st, vm = med["one"], med["stacked"], med["vmap"]
            print(f"| {model} | {dataset} | {first['rows']} | {first['steps']} | {one['epoch_s']:.4f} | "
                  f"{st['epoch_s']:.4f} | {st['epoch_s'] / one['epoch_s']:.2f} | "
                  f"{vm['epoch_s'] / one['epoch_s']:.2f} | "
                  f"{one['cpu_s']:.3f} | {st['cpu_s']:.3f} | {st['cpu_s'] / one['cpu_s']:.2f} | "
                  f"{vm['cpu_s'] / one['cpu_s']:.2f} | <= {TARGET[model]:g} |", flush=True)


if __name__ == "__main__":
    main()
