"""Training throughput and peak memory: semiad's ``Trainer`` vs a Deep-SAD-PyTorch style loop.

    python benchmarks/throughput.py                 # full table + scaling, writes benchmarks/results/
    python benchmarks/throughput.py --quick         # a small smoke run
    make bench ARGS="--models ede --datasets satellite"

*ours*: the real ``Trainer.fit`` (in-memory tensors, index batching). *reference*: the loop
of Deep-SAD-PyTorch's trainers: a torch ``Dataset`` returning ``(x, target, semi_target,
index)`` one sample at a time (images through PIL and a ToTensor transform, as its
MNIST/CIFAR-10 datasets do; tabular rows as tensors, as its ODDS dataset does), a
``DataLoader`` with the default collate, ``loss.item()`` every step, torch's per-parameter
Adam/AdamW, torch's ``BatchNorm`` forward and NCHW conv weights. Both train the same model
(same config, same seed, so the same initial weights) with the same optimizer and scheduler
on the same batch order (the reference DataLoader gets a batch sampler that yields our
permutation). Ours updates with torch's fused Adam/AdamW kernel (other rounding than the
per-parameter loop) and, on images, keeps conv weights channels-last (other summation order),
so losses and weights match to float rounding, which EDE's training amplifies over epochs;
the table reports the differences.

Fairness: every measurement runs in a fresh subprocess, ours and the reference alternate
(A, B, A, B, ...) so background load hits both alike, ``torch.set_num_threads`` is the
same for both (``--threads``, default 1), the first ``--warmup`` epochs are not timed, and
samples/s is the median over ``--repeats``. Each epoch is timed twice: wall clock, and the
process's CPU time (``cpu_*`` columns), which leaves out the time spent waiting for a core
on a busy machine; ``cpu_ratio_per_repeat`` lists the ratio of each repeat's neighbouring
runs, whose spread is the noise. ``--variant NAME=OVERRIDES`` adds ours with other settings
(e.g. ``per_param=trainer.flat_params=false``) to the rotation, ``--checkout NAME=PATH`` ours
from another checkout (e.g. ``git worktree add /tmp/before HEAD~1``). Peak memory: Linux ``VmHWM`` (peak resident
set) reset via ``/proc/self/clear_refs`` just before training, minus the resident set at
that moment, i.e. what training adds on top of the loaded data and model.

Scaling: seconds per epoch of ours for 1k/5k/20k/50k training rows (EDE, LeNet on MNIST
with digits 0-8 normal so that 50k rows exist), with a least-squares line through them.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = os.environ.get("SEMIAD_CONFIG_DIR") or str(ROOT / "configs")
OUT_DIR = ROOT / "benchmarks" / "results"

# One line per model / dataset: the Hydra overrides that select it (the model's own trainer settings).
MODELS: dict[str, list[str]] = {
    "ede": ["model=ede"],
    "deepsad": ["model=deepsad", "trainer=deepsad"],
    "classifier": ["model=classifier", "synthetic=none"],
}
DATASETS: dict[str, list[str]] = {
    "mnist": ["dataset=mnist"],
    "cifar10": ["dataset=cifar10"],
    "satellite": ["dataset=satellite"],
}
# image nets: the classifier uses the dataset's LeNet encoder plus a linear head
IMAGE_EXTRA = {"classifier": ["model.net=${dataset.net}"]}
IMAGES = {"mnist", "cifar10"}
TARGET = {"tabular": 2.5, "image": 1.3}


# ------------------------------------------------------------------ worker (one measurement)
def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def prepare(model_name: str, dataset: str, max_train: int | None, epochs: int, threads: int, batch_size: int | None,
            extra: list[str]):
    """Config, training part, model and trainer exactly as ``semiad train`` builds them."""
    from semiad_cli.tasks.common import build, build_model, fill_data_sizes, load_split, seed_everything

    overrides = [*MODELS[model_name], *DATASETS[dataset], *(IMAGE_EXTRA.get(model_name, []) if dataset in IMAGES
                                                             else []),
                 f"trainer.max_epochs={epochs}", "trainer.device=cpu", f"trainer.num_threads={threads}",
                 "trainer.val_fraction=0.0", "trainer.patience=null", "trainer.progress=false",
                 f"trainer.checkpoint_every={epochs + 1}", *extra]
    if batch_size:
        overrides.append(f"trainer.batch_size={batch_size}")
    cfg = compose(overrides)
    seed_everything(cfg.seed)
    split, _ = load_split(cfg)
    fill_data_sizes(cfg, split.sample_shape)
    trainer = build(cfg.trainer, "trainer")
    train = split.train
    if cfg.get("synthetic") is not None:
        synthetic = build(cfg.synthetic, "synthetic")
        if synthetic is not None:
            train, _, _ = synthetic.augment(train, None, split.features, int(cfg.seed))
    if max_train and len(train) > max_train:
        rows = np.sort(np.random.default_rng(0).permutation(len(train))[:max_train])
        train = train.take(rows)
    seed_everything(cfg.seed)  # the model's initial weights depend on the seed only
    model = build_model(cfg)
    return cfg, train, model, trainer


class DeepSADStyleDataset:
    """``__getitem__`` → ``(x, target, semi_target, index)``, one sample at a time (Deep-SAD-PyTorch).

    Images are kept as uint8 arrays and go through PIL + ToTensor per sample (its MNIST/CIFAR-10
    datasets); tabular rows are float32 tensors indexed one by one (its ODDS dataset).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, semi: np.ndarray, image: bool) -> None:
        import torch

        self.image = image
        if image:
            raw = np.rint(X * 255.0).astype(np.uint8)
            if not np.array_equal(raw.astype(np.float32) / np.float32(255.0), X):
                raise SystemExit("benchmark: image rows are not pixel/255; cannot rebuild the uint8 images")
            # stored as the reference stores them: (n, H, W) for MNIST, (n, H, W, C) for CIFAR-10
            self.data = raw[:, 0] if raw.shape[1] == 1 else raw.transpose(0, 2, 3, 1).copy()
        else:
            self.data = torch.tensor(X, dtype=torch.float32)
        self.targets = torch.as_tensor(y.astype(np.int64))
        self.semi_targets = torch.as_tensor(semi.astype(np.int64))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        import torch
        from PIL import Image

        target, semi_target = int(self.targets[index]), int(self.semi_targets[index])
        if not self.image:
            return self.data[index], target, semi_target, index
        img = self.data[index]
        pic = Image.fromarray(img, mode="L" if img.ndim == 2 else "RGB")
        # torchvision.transforms.ToTensor on a PIL image
        arr = torch.from_numpy(np.array(pic, np.uint8, copy=True)).view(pic.size[1], pic.size[0], len(pic.getbands()))
        return arr.permute(2, 0, 1).contiguous().to(torch.float32).div(255), target, semi_target, index


def reference_fit(model, train, trainer, seed: int) -> tuple[list[float], list[float], list[float], float]:
    """Deep-SAD-PyTorch's ``DeepSADTrainer.train`` loop over our model, optimizer and batch order."""
    import torch
    from torch.utils.data import DataLoader

    from semiad_cli.training.loop import set_threads

    set_threads(trainer.num_threads)
    model.to("cpu")
    X = torch.as_tensor(train.X)
    model.init_from_data(X, torch.as_tensor(train.semi))
    gen = torch.Generator().manual_seed(int(seed))

    class SameOrder:  # yields our permutation's batches, epoch after epoch
        def __iter__(self):
            return iter([chunk.tolist() for chunk in trainer._batches(len(train), gen, torch.device("cpu"))])

        def __len__(self):
            return -(-len(train) // trainer.batch_size)

    dataset = DeepSADStyleDataset(train.X, train.y, train.semi, image=train.X.ndim > 2)
    loader = DataLoader(dataset, batch_sampler=SameOrder(), num_workers=0)
    # the optimizer as Deep-SAD-PyTorch builds it: torch's default per-parameter update on CPU
    make_optimizer = trainer.optimizer
    keywords = getattr(make_optimizer, "keywords", {})
    if "foreach" in keywords or "fused" in keywords:
        make_optimizer = functools.partial(make_optimizer, foreach=False, fused=False)
    optimizer = make_optimizer(model.parameters())
    scheduler = trainer.scheduler(optimizer) if trainer.scheduler else None
    losses, seconds, cpu_seconds = [], [], []
    model.train()
    for _ in range(trainer.max_epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        epoch_loss, n_batches = 0.0, 0
        acc = torch.zeros(())  # float32 sum as our Trainer keeps it, so epoch losses compare bit for bit
        for inputs, _, semi_targets, _ in loader:
            inputs, semi_targets = inputs.to("cpu"), semi_targets.to("cpu")
            optimizer.zero_grad()
            loss, _ = model.loss(inputs, semi_targets)
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item()  # the reference's per-step host sync
            acc += loss.detach()
            n_batches += 1
        if scheduler is not None:
            scheduler.step()
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)
        losses.append(float(acc) / max(n_batches, 1))
    # the reference's data path alone (per-sample __getitem__ + collate), for the ceiling column
    t0 = time.perf_counter()
    for _ in loader:
        pass
    return losses, seconds, cpu_seconds, time.perf_counter() - t0


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_marks(trainer, model) -> list[float]:
    """Process CPU time at the start of each epoch and when training ends (``after_fit``), recorded by
    wrapping the trainer's per-epoch batch drawing and the model's end-of-training hook."""
    marks: list[float] = []
    epoch_batches, after_fit = trainer._epoch_batches, model.after_fit

    def marked_batches(*args):
        marks.append(time.process_time())
        return epoch_batches(*args)

    def marked_after_fit(*args):
        marks.append(time.process_time())
        return after_fit(*args)

    trainer._epoch_batches, model.after_fit = marked_batches, marked_after_fit
    return marks


def worker(spec: dict) -> dict:
    import torch

    extra = [*spec.get("extra", []), *(["trainer.compile=true"] if spec["impl"] == "compiled" else []),
             *spec.get("variant", [])]
    if spec["impl"] == "reference":
        # Deep-SAD-PyTorch's nets keep torch's default NCHW layout, and its optimizer updates tensor by tensor
        extra += ["trainer.flat_params=false", *(["dataset.net.channels_last=false"] if spec["dataset"] in IMAGES
                                                 else [])]
    cfg, train, model, trainer = prepare(spec["model"], spec["dataset"], spec["max_train"], spec["epochs"],
                                         spec["threads"], spec["batch_size"], extra)
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (Linux >= 4.0)
    except OSError:
        pass
    rss_before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    data_seconds = None
    if spec["impl"] != "reference":
        marks = cpu_marks(trainer, model)
        with tempfile.TemporaryDirectory() as tmp:
            trainer.fit(model, train, None, Path(tmp), seed=int(cfg.seed))
        losses = [h["loss"] for h in trainer.history]
        seconds = [h["seconds"] for h in trainer.history]
        cpu_seconds = [b - a for a, b in zip(marks[:-1], marks[1:], strict=True)]
    else:
        losses, seconds, cpu_seconds, data_seconds = reference_fit(model, train, trainer, int(cfg.seed))
    total = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    if spec.get("weights"):
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, spec["weights"])
    timed = seconds[spec["warmup"]:] or seconds
    cpu_timed = cpu_seconds[spec["warmup"]:] or cpu_seconds
    return {"n_train": len(train), "batch_size": trainer.batch_size, "epochs": len(seconds), "losses": losses,
            "epoch_seconds": seconds,
            "samples_per_s": len(train) * len(timed) / sum(timed), "fit_seconds": total,
            "cpu_samples_per_s": len(train) * len(cpu_timed) / sum(cpu_timed),
            "peak_extra_mib": max(peak - rss_before, 0) / 1024, "peak_rss_mib": peak / 1024,
            "data_seconds_per_epoch": data_seconds,
            "threads": torch.get_num_threads()}


# ------------------------------------------------------------------ parent
def run_worker(spec: dict) -> dict:
    """One measurement in a fresh interpreter; ``spec["checkout"]``: import semiad_cli and configs from there."""
    root = Path(spec.get("checkout") or ROOT)
    config_dir = str(root / "configs") if spec.get("checkout") else CONFIG_DIR
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "SEMIAD_CONFIG_DIR": config_dir, "OMP_NUM_THREADS": str(spec["threads"])}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark worker failed for {spec}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_avg() -> float:
    return os.getloadavg()[0]


def weights_diff(a: str, b: str) -> float:
    import torch

    wa, wb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return max((float((wa[k].double() - wb[k].double()).abs().max()) if wa[k].numel() else 0.0) for k in wa)


def compare(args) -> list[dict]:
    variants = dict(v.split("=", 1) for v in args.variant)
    checkouts = dict(v.split("=", 1) for v in args.checkout)
    variants.update(dict.fromkeys(checkouts, ""))
    impls = ["ours", "reference", *(["compiled"] if args.compile else []), *variants]
    rows = []
    for dataset in args.datasets:
        for model in args.models:
            cap = args.max_train_image if dataset in IMAGES else args.max_train_tabular
            base = {"model": model, "dataset": dataset, "max_train": cap, "epochs": args.epochs, "warmup": args.warmup,
                    "threads": args.threads, "batch_size": args.batch_size}
            runs: dict[str, list[dict]] = {impl: [] for impl in impls}
            loads = []
            with tempfile.TemporaryDirectory() as tmp:
                for r in range(args.repeats):
                    order = impls[r % len(impls):] + impls[:r % len(impls)]  # rotate: A B C, B C A, ...
                    for impl in order:
                        loads.append(load_avg())
                        spec = {**base, "impl": impl, "weights": f"{tmp}/{impl}.pt" if r == 0 else None,
                                "variant": [o for o in variants.get(impl, "").split(",") if o],
                                "checkout": checkouts.get(impl)}
                        runs[impl].append(run_worker(spec))
                        print(f"  {model:10s} {dataset:9s} {impl:9s} repeat {r}: "
                              f"{runs[impl][-1]['samples_per_s']:.0f} samples/s, "
                              f"{runs[impl][-1]['cpu_samples_per_s']:.0f} per CPU second", file=sys.stderr, flush=True)
                dw = {impl: weights_diff(f"{tmp}/{impl}.pt", f"{tmp}/reference.pt") for impl in impls}
            ref = runs["reference"]
            sps = {impl: statistics.median(x["samples_per_s"] for x in runs[impl]) for impl in impls}
            cps = {impl: statistics.median(x["cpu_samples_per_s"] for x in runs[impl]) for impl in impls}
            # the ratio within each repeat (its runs are neighbours in time): its spread is the noise
            pair = {impl: [a["cpu_samples_per_s"] / b["cpu_samples_per_s"]
                           for a, b in zip(runs[impl], ref, strict=True)] for impl in impls}
            dl = {impl: max(abs(a - b) for a, b in zip(runs[impl][0]["losses"], ref[0]["losses"], strict=True))
                  for impl in impls}
            rl = {impl: max(abs(a - b) / max(abs(b), 1e-30)
                            for a, b in zip(runs[impl][0]["losses"], ref[0]["losses"], strict=True)) for impl in impls}
            # what a loop with zero overhead of its own would reach with the reference's kernels: the
            # reference's epoch time over its epoch time less its data path
            ref_epoch = statistics.median(statistics.median(x["epoch_seconds"][args.warmup:] or x["epoch_seconds"])
                                          for x in ref)
            ref_data = statistics.median(x["data_seconds_per_epoch"] for x in ref)
            kind = "image" if dataset in IMAGES else "tabular"
            ours = runs["ours"]
            row = {
                "model": model, "dataset": dataset, "kind": kind, "n_train": ours[0]["n_train"],
                "batch_size": ours[0]["batch_size"], "epochs_timed": args.epochs - args.warmup,
                "threads": args.threads, "repeats": args.repeats,
                "ours_samples_s": round(sps["ours"], 1), "ref_samples_s": round(sps["reference"], 1),
                "ratio": round(sps["ours"] / sps["reference"], 3), "target": TARGET[kind],
                "ours_cpu_samples_s": round(cps["ours"], 1), "ref_cpu_samples_s": round(cps["reference"], 1),
                "cpu_ratio": round(cps["ours"] / cps["reference"], 3),
                "cpu_ratio_per_repeat": " ".join(f"{x:.3f}" for x in pair["ours"]),
                "meets_target": sps["ours"] / sps["reference"] >= TARGET[kind],
                "ours_peak_extra_mib": round(statistics.median(x["peak_extra_mib"] for x in ours), 1),
                "ref_peak_extra_mib": round(statistics.median(x["peak_extra_mib"] for x in ref), 1),
                "ours_peak_rss_mib": round(statistics.median(x["peak_rss_mib"] for x in ours), 1),
                "ref_peak_rss_mib": round(statistics.median(x["peak_rss_mib"] for x in ref), 1),
                "ref_data_share": round(ref_data / ref_epoch, 3),
                "ceiling_same_kernels": round(ref_epoch / max(ref_epoch - ref_data, 1e-9), 3),
                "max_abs_epoch_loss_diff": dl["ours"], "max_rel_epoch_loss_diff": float(f"{rl['ours']:.3g}"),
                "max_abs_weight_diff": dw["ours"],
            }
            if args.compile:
                comp = runs["compiled"]
                row.update({
                    "compiled_samples_s": round(sps["compiled"], 1),
                    "compiled_ratio": round(sps["compiled"] / sps["reference"], 3),
                    "compiled_first_epoch_s": round(statistics.median(x["epoch_seconds"][0] for x in comp), 2),
                    "compiled_max_abs_epoch_loss_diff": dl["compiled"],
                    "compiled_max_rel_epoch_loss_diff": float(f"{rl['compiled']:.3g}"),
                    "compiled_max_abs_weight_diff": dw["compiled"],
                })
            for name in variants:
                row.update({f"{name}_cpu_samples_s": round(cps[name], 1), f"{name}_cpu_ratio": round(
                    cps[name] / cps["reference"], 3), f"{name}_cpu_ratio_per_repeat": " ".join(
                    f"{x:.3f}" for x in pair[name]), f"{name}_max_rel_epoch_loss_diff": float(f"{rl[name]:.3g}"),
                    f"ours_over_{name}_per_repeat": " ".join(  # neighbours in time: the direct comparison
                        f"{a['cpu_samples_per_s'] / b['cpu_samples_per_s']:.3f}"
                        for a, b in zip(runs["ours"], runs[name], strict=True))})
            row.update({f"{impl}_all_samples_s": " ".join(f"{x['samples_per_s']:.0f}" for x in runs[impl])
                        for impl in impls})
            row.update({"load_avg_min": round(min(loads), 2), "load_avg_max": round(max(loads), 2)})
            rows.append(row)
    return rows


def scaling(args) -> list[dict]:
    rows = []
    for n in args.scaling_sizes:
        spec = {"model": "ede", "dataset": "mnist", "max_train": n, "epochs": 1 + args.scaling_warmup,
                "warmup": args.scaling_warmup,
                "threads": args.threads, "batch_size": args.batch_size, "impl": "ours",
                "extra": ["dataset.split.normal_class=[0,1,2,3,4,5,6,7,8]", "dataset.split.ratio_known_anomaly=0.0",
                          "dataset.split.n_known_anomaly_classes=0"]}
        load = load_avg()
        res = run_worker(spec)
        sec = statistics.median(res["epoch_seconds"][args.scaling_warmup:])
        rows.append({"model": "ede", "dataset": "mnist", "n_train": res["n_train"], "batch_size": res["batch_size"],
                     "seconds_per_epoch": round(sec, 3), "us_per_sample": round(1e6 * sec / res["n_train"], 1),
                     "load_avg": round(load, 2)})
        print(f"  scaling n={res['n_train']}: {sec:.2f} s/epoch", file=sys.stderr, flush=True)
    if len(rows) >= 2:
        n = np.array([r["n_train"] for r in rows], float)
        s = np.array([r["seconds_per_epoch"] for r in rows], float)
        slope, intercept = np.polyfit(n, s, 1)
        pred = slope * n + intercept
        r2 = 1 - ((s - pred) ** 2).sum() / max(((s - s.mean()) ** 2).sum(), 1e-12)
        for r, p in zip(rows, pred, strict=True):
            r.update({"linear_fit_s": round(float(p), 3), "fit_slope_us_per_sample": round(1e6 * slope, 2),
                      "fit_intercept_s": round(float(intercept), 3), "fit_r2": round(float(r2), 5)})
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def print_table(rows: list[dict], cols: list[str]) -> None:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement (the first --warmup not timed)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both loops")
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's trainer config")
    p.add_argument("--max-train-image", type=int, default=2048, help="training rows used on image sets")
    p.add_argument("--max-train-tabular", type=int, default=None, help="training rows used on tabular sets")
    p.add_argument("--scaling-sizes", type=int, nargs="*", default=[1000, 5000, 20000, 50000])
    p.add_argument("--scaling-warmup", type=int, default=0, help="untimed epochs before the timed one (scaling)")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--compile", action="store_true", help="also measure ours with trainer.compile=true")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=OVERRIDE[,OVERRIDE]",
                   help="also measure ours with these Hydra overrides, e.g. per_param=trainer.flat_params=false")
    p.add_argument("--checkout", action="append", default=[], metavar="NAME=PATH",
                   help="also measure ours from another checkout (semiad_cli and configs), e.g. the commit "
                        "before a change: before and after in the same rotation")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 2 epochs, 512 image rows")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.quick:
        args.repeats, args.epochs, args.max_train_image = 1, 2, 512
        args.scaling_sizes = [500, 1000, 2000]
    if args.epochs <= args.warmup:
        p.error("--epochs must exceed --warmup")
    import torch

    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s); load average {os.getloadavg()}",
          file=sys.stderr)
    rows = compare(args)
    write_csv(args.out / "throughput.csv", rows)
    print("\nThroughput (samples/s, median of repeats; ratio = ours / reference):")
    print_table(rows, ["model", "dataset", "n_train", "batch_size", "ours_samples_s", "ref_samples_s", "ratio",
                       "cpu_ratio", "cpu_ratio_per_repeat", "target", "ceiling_same_kernels", "ours_peak_extra_mib",
                       "ref_peak_extra_mib",
                       "max_rel_epoch_loss_diff", "max_abs_weight_diff",
                       *(["compiled_samples_s", "compiled_ratio", "compiled_first_epoch_s",
                          "compiled_max_rel_epoch_loss_diff"] if args.compile else []),
                       *(f"{v.split('=', 1)[0]}_cpu_ratio" for v in [*args.variant, *args.checkout])])
    print(f"-> {args.out / 'throughput.csv'}")
    if not args.no_scaling and args.scaling_sizes:
        srows = scaling(args)
        write_csv(args.out / "scaling.csv", srows)
        print("\nScaling (EDE, LeNet-MNIST, ours, one timed epoch):")
        print_table(srows, [c for c in ("n_train", "seconds_per_epoch", "us_per_sample", "linear_fit_s", "fit_r2")
                            if c in srows[0]])
        print(f"-> {args.out / 'scaling.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
