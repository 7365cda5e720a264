"""Table 1 at the paper's schedule on one GPU, in one call: three fold seeds x standard and cooperative training.

Here (once): pack the data and the one wheel the GPU image lacks (docs/gpu_table1.md has the whole recipe):

    python Training/gpu_table1_pack.py --data ../shared/data/ACDC/training         # -> .carry/table1 (< 64 MiB)
    python Training/gpu_table1.py wheels                                            # -> .whl/ (MONAI)

On the GPU machine (the device tool's ``run``, carry [".carry", ".whl"], timeout_s 600):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \\
        .whl/*.whl && export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 || exit; \\
    python3 Training/gpu_table1.py run --pack .carry/table1 --out $OUT --deadline-s 540

``run`` does, inside ``--deadline-s`` seconds from its start:

1. probe: every run (configuration x seed) trains ``--probe-epochs`` epochs at once, all concurrently on the one
   GPU, as separate processes; the step time under that load comes from their losses.csv (samples/s), and the
   paper's schedule (600 epochs) in steps from their bundles;
2. plan: the steps that fit in the time left after the reserve for scoring and packing, capped at the paper's;
   it says plainly what fraction of the paper's schedule that is;
3. train: the real runs, concurrently (float16 bundles, CSV logs); a run still going at the training deadline is
   stopped (it writes a checkpoint) and finished at the step it reached, which writes its bundle;
4. score: every model on the same held-out cases of the pack (clean ED/ES, ES under the four artefacts), one
   process per model, Dice as Table 1 (FTN and FTN+STN);
5. report: ``table1.md`` (per seed, and mean ± SD over seeds; protocol with steps per run; commands),
   ``table1.csv`` (every score), ``plan.json``, ``logs.tar.gz`` and one ``bundles_<method>.tar`` per method in
   ``--out`` (at most 8 files of at most 16 MiB each come back from the device machine).

A tiny end-to-end run on the CPU (Testing/test_gpu_table1.py does this with small networks and slices):

    python Training/gpu_table1_pack.py --data DATA --seeds 40 --set data.n_train=1 --set data.n_validation=1 \\
        --max-test-subjects 1 --output /tmp/pack
    python Training/gpu_table1.py run --pack /tmp/pack --out /tmp/out --device cpu --deadline-s 300 \\
        --set data.n_train=1 --set data.n_validation=1 --set data.size=48 --set "method.widths=[8,16,32,32]"
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a source checkout without installing

from CoopSegLib.errors import CoopSegError  # noqa: E402

TRAIN = REPO / "Training" / "train.py"
PAPER_EPOCHS = 600
FIXED = ["checkpoint.bundle_storage=float16", "log.tensorboard=false", "validation.images=false"]
WHEELS = ("monai",)  # the project's dependencies the GPU image lacks (KINDS.md); nibabel/TorchIO are not needed there


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Run:
    """One training run: a configuration at one fold seed, in its own process and folder."""

    config: str
    method: str  # the configuration's method.variant: the table's row name
    seed: int
    folder: Path
    process: Optional[subprocess.Popen] = None
    log: Optional[io.TextIOBase] = None
    finished_at: Optional[float] = None
    notes: List[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.method}_seed{self.seed}"

    @property
    def bundle(self) -> Path:
        return self.folder / "model.coopseg"


def read_manifest(pack: Path) -> dict:
    path = pack / "manifest.json"
    if not path.is_file():
        raise CoopSegError(f"{pack}: no manifest.json; make the pack with Training/gpu_table1_pack.py")
    return json.loads(path.read_text())


def method_of(config: str) -> str:
    sys.path.insert(0, str(REPO / "Training"))
    from train import resolve_config

    from CoopSegLib.training.settings import read_yaml

    return str(read_yaml(resolve_config(config)).get("method", {}).get("variant", "cooperative"))


def start(run: Run, pack: Path, device: str, overrides: Sequence[str], resume: bool = False) -> None:
    """Start train.py for ``run`` (or, with ``resume``, finish it); output into the run's log."""
    run.folder.parent.mkdir(parents=True, exist_ok=True)
    sets = [arg for item in overrides for arg in ("--set", item)]
    if resume:
        command = [sys.executable, str(TRAIN), "--resume", str(run.folder), *sets]
    else:
        command = [sys.executable, str(TRAIN), "--config", run.config, "--data", str(pack / "cases"),
                   "--seed", str(run.seed), "--device", device, "--run-dir", str(run.folder),
                   "--set", "data.format=packed", *sets]
    run.log = open(run.folder.parent / f"{run.folder.name}.log", "a")
    run.log.write("$ " + " ".join(command) + "\n")
    run.log.flush()
    run.process = subprocess.Popen(command, stdout=run.log, stderr=subprocess.STDOUT, cwd=REPO,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    run.finished_at = None


def wait(runs: Sequence[Run], deadline: float, what: str) -> None:
    """Wait for the runs; at ``deadline`` ask those still going to stop (they checkpoint), then wait for them."""
    last_report, stopped = 0.0, False
    while any(run.process.poll() is None for run in runs):
        now = time.monotonic()
        for run in runs:
            if run.finished_at is None and run.process.poll() is not None:
                run.finished_at = now
        if now >= deadline and not stopped:
            going = [run for run in runs if run.process.poll() is None]
            say(f"{what}: deadline reached; stopping {', '.join(r.name for r in going)} (they write a checkpoint)")
            for run in going:
                run.process.send_signal(signal.SIGINT)
                run.notes.append(f"stopped at the {what} deadline")
            stopped = True
        if now - last_report > 30:
            say(f"{what}: " + "; ".join(f"{run.name} {latest_step(run.folder)}" for run in runs))
            last_report = now
        if stopped and now > deadline + 60:
            for run in runs:
                if run.process.poll() is None:
                    run.process.kill()
                    run.notes.append("killed 60 s after the stop request")
        time.sleep(1)
    for run in runs:
        run.finished_at = run.finished_at or time.monotonic()
        run.log.close()


def latest_step(folder: Path) -> str:
    rows = read_csv(folder / "losses.csv")
    return f"step {rows[-1]['step']}" if rows else "starting"


def read_csv(path: Path) -> List[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def step_seconds(run: Run) -> float:
    """Seconds per step from the run's losses.csv (samples/s of its logged windows, the first left out: warm-up)."""
    from CoopSegLib.training.settings import TrainingSettings

    rows = read_csv(run.folder / "losses.csv")
    if not rows:
        raise CoopSegError(f"{run.name}: the probe logged no steps; see {run.folder}.log")
    settings = TrainingSettings.from_yaml(run.folder / "config.yaml")
    slices = settings.train.batch_size * (2 if settings.train.paired else 1)
    speeds = [float(row["samples_per_s"]) for row in (rows[1:] or rows)]
    return slices / (sum(speeds) / len(speeds))


def recorded_training(bundle: Path) -> dict:
    from CoopSegLib.bundle import read_metadata, recorded_objective

    if not bundle.is_dir():
        raise CoopSegError(f"{bundle}: no bundle; the run did not finish (see its log)")
    return read_metadata(bundle)["training"]


def finish_stopped(runs: Sequence[Run], pack: Path, device: str, deadline: float) -> None:
    """Runs stopped before their last step: resume each at the step it reached, which writes its bundle."""
    from CoopSegLib.training.checkpoint import load_checkpoint

    stopped = [run for run in runs if not run.bundle.is_dir() and (run.folder / "checkpoints" / "last.pt").is_file()]
    for run in stopped:
        step = int(load_checkpoint(run.folder / "checkpoints" / "last.pt")["trainer"]["step"])
        run.notes.append(f"finished at step {step}")
        start(run, pack, device, [f"train.steps={step}"], resume=True)
    if stopped:
        wait(stopped, deadline, "finishing")


def check_folds(runs: Sequence[Run], manifest: dict) -> None:
    """Each bundle trained and validated on its fold as packed, and on no test subject."""
    tests = set(manifest["test_subjects"])
    for run in runs:
        data = recorded_training(run.bundle)["data"]
        fold = manifest["folds"][str(run.seed)]
        if list(data["train_subjects"]) != fold["train"] or list(data["validation_subjects"]) != fold["validation"]:
            raise CoopSegError(f"{run.name}: trained on other subjects than the pack's fold {run.seed}")
        if tests & set(data["train_subjects"] + data["validation_subjects"]):
            raise CoopSegError(f"{run.name}: a test subject was used in training or validation")


def test_cases(pack: Path, manifest: dict):
    """The pack's held-out cases in Table 1's order: clean ED/ES of every test subject, then each artefact's copies."""
    from CoopSegLib.data.packed import PACKED_SUFFIX
    from CoopSegLib.data.readers.packed import packed_case_path, read_packed_case_file
    from CoopSegLib.evaluation.test_sets import EvaluationCase

    subjects = manifest["test_subjects"]
    for set_name in manifest["sets"]:
        if set_name == "clean":
            paths = [packed_case_path(pack / "cases", s, frame) for s in subjects for frame in ("ED", "ES")]
        else:
            paths = [pack / "corrupted" / f"{s}_ES_{set_name}_{copy}{PACKED_SUFFIX}" for s in subjects
                     for copy in range(1, manifest["copies"] + 1)]
        for path in paths:
            case = read_packed_case_file(path)
            image = case.image if set_name == "clean" else type(case.image)(case.image.array.astype("float32"),
                                                                            case.image.affine)
            yield EvaluationCase(set_name, path.name[: -len(PACKED_SUFFIX)], image, case.label)


def score(bundle: Path, pack: Path, output: Path, device: str) -> int:
    """Dice of one model on the pack's test cases (FTN and FTN+STN) -> CSV of score rows."""
    from CoopSegLib.evaluation.report import rows_to_csv, write_text_atomically
    from CoopSegLib.evaluation.runner import evaluate_model
    from CoopSegLib.inference import Segmenter

    rows = evaluate_model(Segmenter(bundle, device=device), test_cases(pack, read_manifest(pack)), distances=False)
    write_text_atomically(output, rows_to_csv(rows))
    return len(rows)


def score_all(runs: Sequence[Run], pack: Path, work: Path, device: str, deadline: float) -> Dict[str, list]:
    from CoopSegLib.evaluation.report import rows_from_csv

    processes = {}
    for run in runs:
        log = open(work / f"score_{run.name}.log", "w")
        command = [sys.executable, str(Path(__file__).resolve()), "score", "--bundle", str(run.bundle),
                   "--pack", str(pack), "--output", str(work / f"scores_{run.name}.csv"), "--device", device]
        processes[run.name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO), log)
    for name, (process, log) in processes.items():
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        if process.returncode != 0:
            raise CoopSegError(f"scoring {name} failed (status {process.returncode}); see {log.name}")
    return {run.name: rows_from_csv((work / f"scores_{run.name}.csv").read_text()) for run in runs}


def document(runs: Sequence[Run], rows: Dict[str, list], manifest: dict, plan: dict) -> str:
    from CoopSegLib.evaluation.comparison import Comparison, SeedSummary

    baseline, proposed = runs[0].method, runs[-1].method
    seeds = list(dict.fromkeys(run.seed for run in runs))
    per_seed = {seed: Comparison.of({run.method: rows[run.name] for run in runs if run.seed == seed},
                                    baseline, proposed) for seed in seeds}
    summary = SeedSummary(per_seed)
    verdict = "holds" if summary.claim_holds() else "does not hold"
    fraction = plan["steps"] / plan["paper_steps"]
    lines = [
        f"# Table 1 on a GPU: {baseline} vs {proposed} training, {len(seeds)} fold seed(s)", "",
        "Mean Dice over cases and the three structures (LV, MYO, RV) on the same held-out ACDC subjects for every "
        "model, as in Table 1 of Chen et al. (MICCAI 2021). Clean: ED and ES frames; artefacts: ES frames under "
        f"TorchIO at the paper's parameters ({manifest['copies']} copy each, corruption seed "
        f"{manifest['corruption_seed']}). Made by `Training/gpu_table1.py run` in one call.", "",
        f"Schedule: **{plan['steps']} steps per run, {100 * fraction:.0f} % of the paper's {plan['paper_steps']}** "
        f"({PAPER_EPOCHS} epochs); step time with all {len(runs)} runs concurrent on one {plan['device_name']}: "
        f"{plan['step_s']:.3f} s." + {None: "", "time": " The paper's schedule did not fit in one call.",
                                     "--max-steps": " Capped by --max-steps."}[plan["limited_by"]],
        "", f"## Mean ± SD over seeds {', '.join(map(str, seeds))}", "", summary.markdown(),
        f"The target (cooperative FTN+STN >= standard on every set and >= 0.05 higher on average over the corrupted "
        f"sets, on the means over seeds) **{verdict}**: FTN+STN gain {summary.mean_gain('FTN+STN'):+.4f} over the "
        f"corrupted sets (per seed: {', '.join(f'{g:+.4f}' for g in summary.gains('FTN+STN'))}), FTN gain "
        f"{summary.mean_gain('FTN'):+.4f}.", ""]
    for seed, comparison in per_seed.items():
        lines += [f"## Seed {seed}", "", comparison.markdown()]
    lines += ["## Protocol", ""]
    for seed in seeds:
        fold = manifest["folds"][str(seed)]
        lines.append(f"- Fold {seed}: training {', '.join(fold['train'])}; validation {', '.join(fold['validation'])}")
    tests = manifest["test_subjects"]
    lines += [f"- Test subjects ({len(tests)}, in no fold's training or validation): {', '.join(tests)}", "",
              "| run | configuration | seed | steps | paper's steps | weights from step | Adam lr | device | "
              "wall time | notes |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    from CoopSegLib.bundle import read_metadata, recorded_objective

    for run in runs:
        meta = read_metadata(run.bundle)
        record = meta["training"]
        lines.append(f"| {run.name} | {run.config} | {run.seed} | {record['steps']} | {plan['paper_steps']} | "
                     f"{record['weights_from_step']} | {recorded_objective(meta)['learning_rate']:g} | "
                     f"{record['device']} | {record['wall_time_s'] / 60:.1f} min | {'; '.join(run.notes)} |")
    lines += ["", "## Regenerate", "", "```", *plan["commands"], "```", "",
              "Every Dice score (per seed, method, case, stage and structure) is in `table1.csv`.", ""]
    return "\n".join(lines)


def scores_csv(runs: Sequence[Run], rows: Dict[str, list]) -> str:
    from dataclasses import astuple

    from CoopSegLib.evaluation.report import CSV_FIELDS, csv_text

    return csv_text(("seed", "method", *CSV_FIELDS),
                    ((run.seed, run.method, *astuple(row)) for run in runs for row in rows[run.name]))


def archive(out: Path, runs: Sequence[Run], work: Path) -> None:
    """Logs in one archive; bundles in one archive per method (each well under the 16 MiB a file may be)."""
    with tarfile.open(out / "logs.tar.gz", "w:gz") as logs:
        for path in sorted(work.rglob("*")):
            keep = path.suffix in (".log", ".csv", ".yaml", ".md") and "model.coopseg" not in path.parts
            if path.is_file() and keep:
                logs.add(path, arcname=str(path.relative_to(work)))
    for method in dict.fromkeys(run.method for run in runs):
        with tarfile.open(out / f"bundles_{method}.tar", "w") as bundles:
            for run in runs:
                if run.method == method:
                    bundles.add(run.bundle, arcname=f"{run.name}/model.coopseg")


def run_all(args) -> int:
    import torch

    began = time.monotonic()
    deadline = began + args.deadline_s
    pack, out = Path(args.pack).resolve(), Path(args.out).resolve()
    manifest = read_manifest(pack)
    try:
        import monai  # noqa: F401  (validation and scoring use MONAI's metrics)
    except ImportError:
        raise CoopSegError("MONAI is missing: install the carried wheels first (pip install --target ... .whl/*.whl)")
    configs = args.configs.split(",") if args.configs else manifest["configs"]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else manifest["seeds"]
    missing = [s for s in seeds if str(s) not in manifest["folds"]]
    if missing:
        raise CoopSegError(f"{pack}: no fold packed for seed(s) {missing}; pack with --seeds including them")
    overrides = [*manifest["overrides"], *args.overrides]
    # Run folders stay off OUT: only 8 files, 2 folders deep, come back from it (the archives carry what matters).
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="gpu_table1-"))
    out.mkdir(parents=True, exist_ok=True)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") or (
        args.device == "auto" and torch.cuda.is_available()) else "CPU"
    workers = max(0, min(4, ((os.cpu_count() or 2) - 2) // (len(configs) * len(seeds))))
    common = [*FIXED, f"train.workers={workers}", *overrides]

    def runs_in(folder: str) -> List[Run]:
        return [Run(config, method_of(config), seed, work / folder / f"{method_of(config)}_seed{seed}")
                for seed in seeds for config in configs]

    say(f"probe: {len(configs) * len(seeds)} runs x {args.probe_epochs} epoch(s), concurrently on {device_name}")
    probes = runs_in("probe")
    for run in probes:
        start(run, pack, args.device, [*common, f"train.epochs={args.probe_epochs}", "validation.every=0",
                                       "checkpoint.every=1000000", f"log.every={args.probe_log_every}"])
    probe_deadline = began + args.probe_limit_s
    wait(probes, probe_deadline, "probe")
    for run in probes:
        recorded_training(run.bundle)  # a probe that failed stops here, naming its log
    step_s = max(step_seconds(run) for run in probes)
    paper_steps = max(PAPER_EPOCHS * recorded_training(run.bundle)["steps"] // args.probe_epochs for run in probes)
    # Start-up (process, CUDA, data) and the closing validation cost what the probe spent beyond its steps.
    overhead = max((run.finished_at - began) - recorded_training(run.bundle)["steps"] * step_s for run in probes)
    left = deadline - time.monotonic() - args.reserve_s - overhead
    fitting = max(1, int(args.fill * left / step_s))
    steps = min(paper_steps, fitting, args.max_steps or paper_steps)
    limit = None if steps == paper_steps else "time" if steps == fitting else "--max-steps"
    plan = {"step_s": step_s, "paper_steps": paper_steps, "steps": steps, "fraction": steps / paper_steps,
            "limited_by": limit,
            "startup_s": overhead, "probe_s": time.monotonic() - began, "device_name": device_name,
            "configs": configs, "seeds": seeds, "workers": workers}
    say(f"plan: {step_s:.3f} s per step with {len(probes)} runs at once; {steps} steps per run = "
        f"{100 * steps / paper_steps:.0f} % of the paper's {paper_steps}"
        + {None: "", "time": " (the paper's schedule does not fit in this call)",
           "--max-steps": " (capped by --max-steps)"}[limit])
    runs = runs_in("runs")
    for run in runs:
        start(run, pack, args.device, [*common, f"train.steps={steps}"])
    wait(runs, deadline - args.reserve_s, "training")
    finish_stopped(runs, pack, args.device, deadline - args.reserve_s / 2)
    check_folds(runs, manifest)
    say(f"scoring {len(runs)} models on {len(manifest['test_subjects'])} test subjects")
    rows = score_all(runs, pack, work, args.device, deadline - 15)
    plan["train_and_score_s"] = time.monotonic() - began
    plan["commands"] = [
        f"python Training/gpu_table1_pack.py --data DATA --seeds {','.join(map(str, manifest['seeds']))} "
        + " ".join(f"--set {o}" for o in manifest["overrides"]) + f" --copies {manifest['copies']}",
        "python Training/gpu_table1.py wheels",
        "# on the GPU machine (device run, carry .carry and .whl, timeout_s 600):",
        "python3 Training/gpu_table1.py run --pack .carry/table1 --out $OUT --deadline-s " + f"{args.deadline_s:g}"
        + " ".join(f" --set {o}" for o in args.overrides)]
    from CoopSegLib.evaluation.report import write_text_atomically

    write_text_atomically(out / "table1.csv", scores_csv(runs, rows))
    write_text_atomically(out / "table1.md", document(runs, rows, manifest, plan))
    write_text_atomically(out / "plan.json", json.dumps(plan, indent=1) + "\n")
    archive(out, runs, work)
    say(f"done in {time.monotonic() - began:.0f} s: {out / 'table1.md'}")
    print((out / "table1.md").read_text())
    print(json.dumps({k: v for k, v in plan.items() if k != "commands"}))
    return 0


def download_wheels(folder: Path) -> int:
    """pip download of the wheels the GPU image lacks (the device README's command), at this machine's versions."""
    from importlib.metadata import version

    folder.mkdir(exist_ok=True)
    platforms = [arg for n in ("manylinux_2_28", "manylinux_2_17", "manylinux2014") for arg in
                 ("--platform", f"{n}_x86_64")]
    for name in WHEELS:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                   "3.12", "--implementation", "cp", *platforms, "-d", str(folder), f"{name}=={version(name)}"]
        say(" ".join(command))
        subprocess.run(command, check=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="probe, plan, train, score and report (on the GPU machine)")
    run.add_argument("--pack", required=True, metavar="DIR", help="carry folder from Training/gpu_table1_pack.py")
    run.add_argument("--out", required=True, metavar="DIR", help="where the table, logs and bundles go ($OUT)")
    run.add_argument("--work", metavar="DIR", help="run folders (default: a new temporary folder, not under OUT)")
    run.add_argument("--configs", help="comma-separated configurations, baseline first (default: the pack's)")
    run.add_argument("--seeds", help="comma-separated fold seeds (default: the pack's)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="settings override for every run (after the pack's own), repeatable")
    run.add_argument("--device", default="auto")
    run.add_argument("--deadline-s", type=float, default=540, help="finish everything within this (540 s)")
    run.add_argument("--reserve-s", type=float, default=100, help="kept for finishing, scoring, archiving (100 s)")
    run.add_argument("--fill", type=float, default=0.9, help="share of the planned training time to use (0.9)")
    run.add_argument("--probe-epochs", type=int, default=2, help="epochs of the step-time probe (2)")
    run.add_argument("--probe-log-every", type=int, default=5, help="steps per logged window in the probe (5)")
    run.add_argument("--probe-limit-s", type=float, default=150, help="stop the probe after this (150 s)")
    run.add_argument("--max-steps", type=int, default=0, help="cap on the planned steps (default: the paper's)")
    scorer = commands.add_parser("score", help="score one bundle on the pack's test cases (run starts these)")
    scorer.add_argument("--bundle", required=True)
    scorer.add_argument("--pack", required=True)
    scorer.add_argument("--output", required=True)
    scorer.add_argument("--device", default="auto")
    wheels = commands.add_parser("wheels", help="download the wheels the GPU image lacks into .whl/")
    wheels.add_argument("--folder", default=str(REPO / ".whl"))
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run_all(args)
        if args.command == "score":
            count = score(Path(args.bundle), Path(args.pack), Path(args.output), args.device)
            print(f"{count} score rows -> {args.output}")
            return 0
        return download_wheels(Path(args.folder))
    except CoopSegError as error:
        print(f"gpu_table1.py: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
