"""Train a small CNN on AffectNet+ soft labels, end to end, on the built-in synthetic sample.

    python examples/train.py                       # about a minute on 2 CPU cores
    python examples/train.py --data ./affectnet_plus --steps 20000 --size 224 --batch-size 256

What it shows: the exported dataset read back with ``load_dataset`` (images stay JPEG
bytes), ``make_loader`` decoding in workers, ``DevicePrefetcher`` normalising and
augmenting on the device (CUDA when present), the 8-class view, soft-label
cross-entropy with an explicit normalisation, a valence/arousal head trained only where
the annotation exists, and the evaluation metrics per subset and per group.

Without ``--data`` it writes a synthetic release (``write_sample``) and exports it with
the package's ``export`` into a temporary folder first. The synthetic faces are cartoons
whose expression shows in a few landmarks and whose soft scores are random apart from the
human label's rank: the loss and the training accuracy move, the KL to the soft labels
cannot fall much, and none of the numbers says anything about real data.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402


def small_cnn(num_classes: int) -> nn.Module:
    """Four strided conv blocks, global pooling, a class head and a valence/arousal head."""

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 96), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.classes = nn.Linear(96, num_classes)
            self.va = nn.Linear(96, 2)

        def forward(self, x):
            h = self.features(x)
            return self.classes(h), torch.tanh(self.va(h))

    return Net()


def build_data(data: str | None, n: int, workdir: Path) -> Path:
    if data:
        return Path(data)
    from affectnetplus_hf.export import export
    from affectnetplus_hf.sample import write_sample

    raw, out = workdir / "raw", workdir / "affectnet_plus"
    write_sample(raw, n=n, parts=("train", "validation"))
    export(raw, out, progress=False, card_plots=False)
    return out


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    if not bool(valid.any()):
        return pred.sum() * 0.0
    return ((pred[valid] - target[valid]) ** 2).mean()


@torch.no_grad()
def evaluate(model, loader, device) -> dict:
    from affectnetplus_hf.torch import DevicePrefetcher, ccc, classification_report, js_divergence, kl_divergence, rmse

    model.eval()
    parts: dict[str, list] = {k: [] for k in ("logits", "va", "human_label", "subset", "gender", "race", "soft_label", "valence", "arousal")}
    for batch in DevicePrefetcher(loader, device):
        logits, va = model(batch["image"])
        parts["logits"].append(logits.float().cpu())
        parts["va"].append(va.float().cpu())
        for key in ("human_label", "subset", "gender", "race", "soft_label", "valence", "arousal"):
            parts[key].append(batch[key].cpu())
    model.train()
    if not parts["logits"]:
        return {}
    cat = {key: torch.cat(values) for key, values in parts.items()}
    report = classification_report(
        cat["logits"], cat["human_label"], subset=cat["subset"], gender=cat["gender"], race=cat["race"], min_group_size=5
    )
    predicted = torch.softmax(cat["logits"], dim=1)
    report["soft"] = {"kl": float(kl_divergence(cat["soft_label"], predicted)), "js": float(js_divergence(cat["soft_label"], predicted))}
    report["valence"] = {"rmse": float(rmse(cat["va"][:, 0], cat["valence"])), "ccc": float(ccc(cat["va"][:, 0], cat["valence"]))}
    report["arousal"] = {"rmse": float(rmse(cat["va"][:, 1], cat["arousal"])), "ccc": float(ccc(cat["va"][:, 1], cat["arousal"]))}
    return report


def print_report(report: dict) -> None:
    overall = report["overall"]
    print(f"  overall      n={overall['n']:4d}  accuracy={overall['accuracy']:.3f}  macro-F1={overall['macro_f1']:.3f}")
    for name, values in report["subset"].items():
        print(f"  {name:<12} n={values['n']:4d}  accuracy={values['accuracy']:.3f}  macro-F1={values['macro_f1']:.3f}")
    for attribute in ("gender", "race"):
        gap = report[attribute]["gap"]
        pair = gap["accuracy_groups"]
        detail = f" ({pair[0]} vs {pair[1]})" if pair else ""
        print(f"  {attribute:<12} largest accuracy gap between groups: {gap['accuracy']:.3f}{detail}")
    print(f"  soft label   KL={report['soft']['kl']:.3f}  JS={report['soft']['js']:.3f}  (vs the renormalised 8-class soft label)")
    for name in ("valence", "arousal"):
        print(f"  {name:<12} RMSE={report[name]['rmse']:.3f}  CCC={report[name]['ccc']:.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="an exported AffectNet+ folder (default: a synthetic sample made now)")
    parser.add_argument("--n", type=int, default=240, help="synthetic records per part (default 240)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=64, help="image side fed to the model (decoded and resized in workers)")
    parser.add_argument("--workers", type=int, default=1, help="decoding workers (small images: one keeps up)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0 = off)")
    parser.add_argument("--hard-weight", type=float, default=1.0, help="weight of a cross-entropy on the human label (0 = soft labels only)")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: cores left after the workers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=25)
    args = parser.parse_args(argv)

    import datasets

    from affectnetplus_hf.torch import EIGHT_CLASS, BatchAugment, DevicePrefetcher, make_loader, mixup, soft_cross_entropy, soft_kl_div

    datasets.disable_progress_bars()
    torch.manual_seed(args.seed)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # on the CPU the model shares the cores with the decoding workers: oversubscribed
    # OpenMP threads spin and slow everything down, so leave the workers their cores
    torch.set_num_threads(args.threads or max(1, cores - args.workers))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else torch.device(args.device)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="affectnetplus-train-") as tmp:
        folder = build_data(args.data, args.n, Path(tmp))
        # images stay JPEG bytes (decode=False): the loader's workers decode them, once
        no_decode = datasets.Image(decode=False)
        train = datasets.load_dataset(str(folder), "all", split="train", cache_dir=str(Path(tmp) / "cache")).cast_column("image", no_decode)
        validation = datasets.load_dataset(str(folder), "all", split="validation", cache_dir=str(Path(tmp) / "cache")).cast_column(
            "image", no_decode
        )
        print(f"data: {folder} ({len(train)} train, {len(validation)} validation rows); device: {device}")

        loader = make_loader(train, args.batch_size, num_workers=args.workers, size=args.size, view=EIGHT_CLASS, seed=args.seed, drop_last=True)
        val_loader = make_loader(validation, 64, num_workers=args.workers, size=args.size, view=EIGHT_CLASS, shuffle=False)
        augment = BatchAugment(flip_p=0.5, crop_scale=(0.9, 1.0), degrees=5, erase_p=0.1, seed=args.seed)
        model = small_cnn(EIGHT_CLASS.num_classes).to(device).to(memory_format=torch.channels_last)
        optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps)
        mix_generator = torch.Generator(device=device).manual_seed(args.seed)

        step, running, running_kl, correct, seen = 0, 0.0, 0.0, 0, 0
        while step < args.steps:
            for batch in DevicePrefetcher(loader, device, augment=augment):
                if args.mixup > 0:
                    batch, _ = mixup(batch, alpha=args.mixup, generator=mix_generator)
                logits, va = model(batch["image"])
                # the 8-class view renormalised the soft label: it already is a distribution
                loss = soft_cross_entropy(logits, batch["soft_label"], normalize="none")
                if args.hard_weight > 0:  # the human label too (mixup pairs it with mix_index)
                    hard = nn.functional.cross_entropy(logits, batch["human_label"], reduction="none")
                    if "mix_index" in batch:
                        lam = batch["mix_lambda"].item()
                        hard = lam * hard + (1 - lam) * nn.functional.cross_entropy(logits, batch["human_label"][batch["mix_index"]], reduction="none")
                    loss = loss + args.hard_weight * hard.mean()
                loss = loss + 0.5 * masked_mse(va[:, 0], batch["valence"], batch["valence_valid"])
                loss = loss + 0.5 * masked_mse(va[:, 1], batch["arousal"], batch["arousal_valid"])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                step += 1
                running += loss.item()
                with torch.no_grad():
                    running_kl += soft_kl_div(logits, batch["soft_label"], normalize="none").item()
                    correct += int((logits.argmax(1) == batch["human_label"]).sum())
                    seen += batch["human_label"].numel()
                if step % args.log_every == 0 or step == args.steps:
                    count = args.log_every if step % args.log_every == 0 else step % args.log_every
                    print(
                        f"step {step:5d}  loss {running / count:.4f}  soft-label KL {running_kl / count:.4f}  "
                        f"train accuracy {correct / max(seen, 1):.3f}  ({time.perf_counter() - started:.0f} s)",
                        flush=True,
                    )
                    running, running_kl, correct, seen = 0.0, 0.0, 0, 0
                if step >= args.steps:
                    break
            if math.isnan(running):
                print("loss is NaN; stopping", file=sys.stderr)
                return 1

        print("validation (8-class view, human labels):")
        report = evaluate(model, val_loader, device)
        print_report(report)
        print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
