"""Train a small CNN on AffectNet+ soft labels, end to end, on the built-in synthetic sample.

    python examples/train.py                       # about a minute on 2 CPU cores
    python examples/train.py --data ./affectnet_plus --steps 20000 --size 224 --batch-size 256
    python examples/train.py --multitask --balancing ema      # every annotated head, masked where null
    python examples/train.py --curriculum epoch:1,2           # easy -> easy + challenging -> all
    python examples/train.py --resample race=balanced --fairness-report
    python examples/train.py --resume run.pt --stop-after 100 # preempted at step 100 ...
    python examples/train.py --resume run.pt                  # ... and resumed at batch 101

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

``--resume PATH`` checkpoints the model, optimiser, schedule, multi-task balancing and
the loader's position to PATH (every ``--checkpoint-every`` steps and at the end) and, when
PATH exists, continues from it: the loader yields the batch after the last one trained on.
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


def small_cnn(num_classes: int, multitask: bool = False, size: int = 64) -> nn.Module:
    """Four strided conv blocks, global pooling, a class head and a valence/arousal head;
    with ``multitask`` also landmark, age, gender, race and head-pose heads. Returns a dict
    keyed like :data:`affectnetplus_hf.torch.HEADS`."""

    def block(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                block(3, 16), block(16, 32), block(32, 64), block(64, 96), nn.AdaptiveAvgPool2d(1), nn.Flatten()
            )
            self.classes = nn.Linear(96, num_classes)
            self.va = nn.Linear(96, 2)
            if multitask:
                self.landmarks = nn.Linear(96, 68 * 2)
                self.attributes = nn.Linear(96, 1 + 2 + 6 + 3)  # age, gender, race, head pose

        def forward(self, x):
            h = self.features(x)
            va = torch.tanh(self.va(h))
            out = {"expression": self.classes(h), "valence": va[:, 0], "arousal": va[:, 1]}
            if multitask:
                out["landmarks"] = (torch.sigmoid(self.landmarks(h)) * size).view(-1, 68, 2)  # pixels of the input
                a = self.attributes(h)
                out.update(age=30 + 20 * a[:, 0], gender=a[:, 1:3], race=a[:, 3:9], head_pose=a[:, 9:12])
            return out

    return Net()


def build_data(data: str | None, n: int, workdir: Path) -> Path:
    if data:
        return Path(data)
    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.sample import write_sample

    raw, out = workdir / "raw", workdir / "affectnet_plus"
    write_sample(raw, n=n, parts=("train", "validation"))
    export(raw, out, progress=False, card_plots=False)
    return out


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    if not bool(valid.any()):
        return pred.sum() * 0.0
    return ((pred[valid] - target[valid]) ** 2).mean()


@torch.no_grad()
def evaluate(model, loader, device, fairness: bool = False) -> dict:
    from affectnetplus_hf.torch import (
        DevicePrefetcher,
        ccc,
        classification_report,
        fairness_report,
        js_divergence,
        kl_divergence,
        rmse,
    )

    model.eval()
    keys = ("human_label", "subset", "gender", "race", "age", "soft_label", "valence", "arousal")
    parts: dict[str, list] = {k: [] for k in ("logits", "va", *keys)}
    for batch in DevicePrefetcher(loader, device):
        out = model(batch["image"])
        parts["logits"].append(out["expression"].float().cpu())
        parts["va"].append(torch.stack([out["valence"], out["arousal"]], 1).float().cpu())
        for key in keys:
            parts[key].append(batch[key].cpu())
    model.train()
    if not parts["logits"]:
        return {}
    cat = {key: torch.cat(values) for key, values in parts.items()}
    report = classification_report(
        cat["logits"],
        cat["human_label"],
        subset=cat["subset"],
        gender=cat["gender"],
        race=cat["race"],
        min_group_size=5,
    )
    predicted = torch.softmax(cat["logits"], dim=1)
    report["soft"] = {
        "kl": float(kl_divergence(cat["soft_label"], predicted)),
        "js": float(js_divergence(cat["soft_label"], predicted)),
    }
    report["valence"] = {
        "rmse": float(rmse(cat["va"][:, 0], cat["valence"])),
        "ccc": float(ccc(cat["va"][:, 0], cat["valence"])),
    }
    report["arousal"] = {
        "rmse": float(rmse(cat["va"][:, 1], cat["arousal"])),
        "ccc": float(ccc(cat["va"][:, 1], cat["arousal"])),
    }
    if fairness:
        report["fairness"] = fairness_report(
            cat["logits"],
            cat["human_label"],
            race=cat["race"],
            gender=cat["gender"],
            age=cat["age"],
            n_boot=200,
            min_group_size=5,
        )
    return report


def print_report(report: dict) -> None:
    from affectnetplus_hf.torch import format_fairness

    overall = report["overall"]
    print(f"  overall      n={overall['n']:4d}  accuracy={overall['accuracy']:.3f}  macro-F1={overall['macro_f1']:.3f}")
    for name, values in report["subset"].items():
        print(f"  {name:<12} n={values['n']:4d}  accuracy={values['accuracy']:.3f}  macro-F1={values['macro_f1']:.3f}")
    for attribute in ("gender", "race"):
        gap = report[attribute]["gap"]
        pair = gap["accuracy_groups"]
        detail = f" ({pair[0]} vs {pair[1]})" if pair else ""
        print(f"  {attribute:<12} largest accuracy gap between groups: {gap['accuracy']:.3f}{detail}")
        for name, values in report[attribute]["groups"].items():
            if values["n"]:
                print(
                    f"    {name:<16} n={values['n']:4d}  accuracy={values['accuracy']:.3f}  macro-F1={values['macro_f1']:.3f}"
                )
    print(
        f"  soft label   KL={report['soft']['kl']:.3f}  JS={report['soft']['js']:.3f}  (vs the renormalised 8-class soft label)"
    )
    for name in ("valence", "arousal"):
        print(f"  {name:<12} RMSE={report[name]['rmse']:.3f}  CCC={report[name]['ccc']:.3f}")
    if "fairness" in report:
        print("fairness by group (value [95% bootstrap interval]):")
        print(format_fairness(report["fairness"]))


def parse_resample(text: str) -> tuple[str, object]:
    """``race=balanced`` or ``race=white:0.5,black:0.5`` -> (attribute, target)."""
    attribute, _, target = text.partition("=")
    if not target:
        raise SystemExit(
            f"--resample {text!r}: expected ATTRIBUTE=balanced or ATTRIBUTE=group:share,... (e.g. race=balanced)"
        )
    if target == "balanced":
        return attribute, target
    try:
        return attribute, {name: float(share) for name, share in (item.split(":") for item in target.split(","))}
    except ValueError:
        raise SystemExit(f"--resample {text!r}: shares must read group:number, e.g. race=white:0.5,black:0.5") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="an exported AffectNet+ folder (default: a synthetic sample made now)")
    parser.add_argument("--n", type=int, default=240, help="synthetic records per part (default 240)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--size", type=int, default=64, help="image side fed to the model (decoded and resized in workers)"
    )
    parser.add_argument("--workers", type=int, default=1, help="decoding workers (small images: one keeps up)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0 = off)")
    parser.add_argument(
        "--hard-weight",
        type=float,
        default=1.0,
        help="weight of a cross-entropy on the human label (0 = soft labels only)",
    )
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: cores left after the workers)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument(
        "--multitask", action="store_true", help="train every annotated head (MultiTaskLoss, masked where null)"
    )
    parser.add_argument(
        "--balancing", default="ema", choices=("fixed", "uncertainty", "ema"), help="multi-task loss balancing"
    )
    parser.add_argument(
        "--curriculum", help="complexity curriculum: epoch:E1,E2 or step:S1,S2 (easy -> easy + challenging -> all)"
    )
    parser.add_argument(
        "--resample",
        help="train on a subset with this demographic mix: race=balanced, gender=balanced, age=balanced, or race=white:0.5,black:0.5",
    )
    parser.add_argument(
        "--fairness-report", action="store_true", help="print fairness by race, gender and age band after validation"
    )
    parser.add_argument(
        "--resume", metavar="PATH", help="checkpoint file: resume from it when it exists, save to it while training"
    )
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (with --resume)")
    parser.add_argument(
        "--stop-after", type=int, default=None, help="stop after this many steps, checkpointed (a simulated preemption)"
    )
    args = parser.parse_args(argv)

    import datasets

    from affectnetplus_hf.core.configs import NULL_SUBSET
    from affectnetplus_hf.torch import (
        EIGHT_CLASS,
        BatchAugment,
        Curriculum,
        DevicePrefetcher,
        MultiTaskLoss,
        make_loader,
        mixup,
        resample,
        resolve_device,
        soft_cross_entropy,
        soft_kl_div,
    )
    from affectnetplus_hf.torch.epoch_plan import derived_seed

    datasets.disable_progress_bars()
    torch.manual_seed(args.seed)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # on the CPU the model shares the cores with the decoding workers: oversubscribed
    # OpenMP threads spin and slow everything down, so leave the workers their cores
    torch.set_num_threads(args.threads or max(1, cores - args.workers))
    device = resolve_device(args.device)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="affectnetplus-train-") as tmp:
        folder = build_data(args.data, args.n, Path(tmp))
        # images stay JPEG bytes (decode=False): the loader's workers decode them, once
        no_decode = datasets.Image(decode=False)
        train = datasets.load_dataset(
            str(folder), "all", split="train", cache_dir=str(Path(tmp) / "cache")
        ).cast_column("image", no_decode)
        validation = datasets.load_dataset(
            str(folder), "all", split="validation", cache_dir=str(Path(tmp) / "cache")
        ).cast_column("image", no_decode)
        print(f"data: {folder} ({len(train)} train, {len(validation)} validation rows); device: {device}")
        if args.resample:
            attribute, target = parse_resample(args.resample)
            try:
                picked = resample(train, attribute, target, seed=args.seed)
            except (ValueError, TypeError) as exc:
                raise SystemExit(f"--resample {args.resample!r}: {exc}") from None
            print(picked.summary())
            train = picked.dataset()

        try:
            curriculum = Curriculum.parse(args.curriculum) if args.curriculum else None
        except ValueError as exc:
            raise SystemExit(f"--curriculum: {exc}") from None
        loader = make_loader(
            train,
            args.batch_size,
            num_workers=args.workers,
            size=args.size,
            view=EIGHT_CLASS,
            seed=args.seed,
            drop_last=True,
            curriculum=curriculum,
        )
        val_loader = make_loader(
            validation, 64, num_workers=args.workers, size=args.size, view=EIGHT_CLASS, shuffle=False
        )
        augment = BatchAugment(flip_p=0.5, crop_scale=(0.9, 1.0), degrees=5, erase_p=0.1, seed=args.seed)
        model = (
            small_cnn(EIGHT_CLASS.num_classes, multitask=args.multitask, size=args.size)
            .to(device)
            .to(memory_format=torch.channels_last)
        )
        # the 8-class view renormalised the soft label: it already is a distribution
        criterion = MultiTaskLoss(normalize="none", balancing=args.balancing).to(device) if args.multitask else None
        parameters = [*model.parameters(), *(criterion.parameters() if criterion is not None else [])]
        optimiser = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps)
        mix_generator = torch.Generator(device=device).manual_seed(args.seed)

        step = 0
        checkpoint = Path(args.resume) if args.resume else None

        def save(loader_state) -> None:
            state = {
                "step": step,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(),
            }
            state.update(loader=loader_state, mix=mix_generator.get_state())
            if criterion is not None:
                state["criterion"] = criterion.state_dict()
            partial = checkpoint.with_name(checkpoint.name + ".partial")
            torch.save(state, partial)
            os.replace(partial, checkpoint)  # a preemption mid-save leaves the previous checkpoint whole

        if checkpoint is not None and checkpoint.exists():
            state = torch.load(checkpoint, map_location=device, weights_only=False)
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            loader.load_state_dict(state["loader"])
            mix_generator.set_state(state["mix"])
            if criterion is not None:
                criterion.load_state_dict(state["criterion"])
            step = state["step"]
            print(f"resumed from {checkpoint} at step {step} (epoch {loader.epoch})")

        def batches():
            """The loader's batches, each with the state that resumes after it; each batch's
            augmentation seeded by its place in the run, so a resumed run augments alike
            (the prefetcher augments a batch ahead of the step that trains on it)."""
            for batch in loader.stamped():
                augment.generator(device).manual_seed(derived_seed(args.seed, loader.steps))
                yield batch

        running, running_kl, correct, seen, last_log = 0.0, 0.0, 0, 0, step
        last_state = None
        empty_epochs = 0
        while step < args.steps:
            step_before = step
            for batch in DevicePrefetcher(batches(), device, augment=augment):
                last_state = batch.pop("loader_state")  # resumes right after this batch
                if args.mixup > 0:
                    batch, _ = mixup(batch, alpha=args.mixup, generator=mix_generator)
                out = model(batch["image"])
                logits = out["expression"]
                if criterion is not None:
                    loss, parts = criterion(out, batch)
                else:
                    loss = soft_cross_entropy(logits, batch["soft_label"], normalize="none")
                    loss = loss + 0.5 * masked_mse(out["valence"], batch["valence"], batch["valence_valid"])
                    loss = loss + 0.5 * masked_mse(out["arousal"], batch["arousal"], batch["arousal_valid"])
                if args.hard_weight > 0:  # the human label too (mixup pairs it with mix_index)
                    hard = nn.functional.cross_entropy(logits, batch["human_label"], reduction="none")
                    if "mix_index" in batch:
                        lam = batch["mix_lambda"].item()
                        hard = lam * hard + (1 - lam) * nn.functional.cross_entropy(
                            logits, batch["human_label"][batch["mix_index"]], reduction="none"
                        )
                    loss = loss + args.hard_weight * hard.mean()
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
                    count = step - last_log
                    stage = ""
                    if curriculum is not None:  # the subsets of the batch just trained on (the loader runs ahead)
                        mine = last_state["affectnetplus"]
                        position = (
                            mine["epoch"] if curriculum.by == "epoch" else mine["step_base"] + mine["yielded"] - 1
                        )
                        stage = "  subsets " + "+".join(
                            name or NULL_SUBSET for name in curriculum.stages[curriculum.stage_at(position)]
                        )
                    print(
                        f"step {step:5d}  loss {running / count:.4f}  soft-label KL {running_kl / count:.4f}  "
                        f"train accuracy {correct / max(seen, 1):.3f}{stage}  ({time.perf_counter() - started:.0f} s)",
                        flush=True,
                    )
                    if criterion is not None:
                        heads = "  ".join(
                            f"{head} {parts[head]:.3f} (w {w:.2f})" for head, w in criterion.current_weights().items()
                        )
                        print(f"  heads: {heads}", flush=True)
                    running, running_kl, correct, seen, last_log = 0.0, 0.0, 0, 0, step
                if checkpoint is not None and (
                    step % args.checkpoint_every == 0 or step == args.steps or step == args.stop_after
                ):
                    save(last_state)
                if step >= args.steps or step == args.stop_after:
                    break
            if math.isnan(running):
                print("loss is NaN; stopping", file=sys.stderr)
                return 1
            empty_epochs = empty_epochs + 1 if step == step_before else 0
            if empty_epochs > (len(curriculum.starts) + 1 if curriculum is not None else 1):
                print(
                    f"epochs yield no batch: {len(train)} training rows cannot fill a batch of {args.batch_size}; lower --batch-size",
                    file=sys.stderr,
                )
                return 1
            if args.stop_after is not None and step == args.stop_after and step < args.steps:
                print(f"stopped after step {step} (checkpoint: {checkpoint})")
                return 0

        print("validation (8-class view, human labels):")
        report = evaluate(model, val_loader, device, fairness=args.fairness_report)
        print_report(report)
        print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
