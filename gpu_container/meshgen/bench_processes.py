"""One process per photo versus one process for all: what each job's start-up costs.

``python -m gpu_container.meshgen.bench_processes [--photos 100] [--preset fast]
[--weights DIR] [--json]`` (``make bench-processes``).

Today every upload is its own AWS Batch job, so every photo pays a process start, the
generator's imports and its model load before its second or so of useful work. This bench
runs the generator on the same photos both ways on this machine:

* **per process**: a fresh ``python -m gpu_container.meshgen.bench_processes --one PHOTO``
  subprocess per photo (interpreter start, imports, ``Generator.from_pretrained``, one
  photo), as a job in a fresh container would;
* **one process**: the generator loaded once, then every photo in turn, as a job that packs
  many photos would.

Photos are the project's ``samples/*.jpg`` cycled. Without ``--weights`` the generator runs
its weight-free backend (no torch import, no model load), so the gap it shows is a lower
bound: with TripoSR every process would also import torch and load 1.7 GB of weights.
Prints, never asserts; container start and instance boot are not in it (see docs/cost.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from meshdrop_contract import JobOptions, Preset

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "gpu_container.meshgen.bench_processes"


def photo_paths(count: int, source: Path = SAMPLES) -> list[Path]:
    """``count`` photo paths, the sample photos cycled (the same file may come back)."""
    samples = sorted(source.glob("*.jpg"))
    if not samples:
        raise FileNotFoundError(f"no *.jpg in {source}")
    return list(itertools.islice(itertools.cycle(samples), count))


def run_one(photo: Path, output: Path, preset: Preset, weights: Path | None) -> dict[str, Any]:
    """The worker: load the generator, generate one photo, report where the time went.

    ``started`` is taken before the generator's import, so ``load_s`` covers imports and
    model loading; the interpreter's own start is only visible from the parent.
    """
    started = time.perf_counter()
    from .generator import Generator

    generator = Generator.from_pretrained(weights)
    loaded = time.perf_counter()
    result = generator.generate(photo.read_bytes(), JobOptions(preset=preset))
    output.write_bytes(result.data)
    done = time.perf_counter()
    return {
        "load_s": round(loaded - started, 4),
        "generate_s": round(done - loaded, 4),
        "backend": result.provenance.backend,
    }


def per_process(
    photos: list[Path], preset: Preset, weights: Path | None, work: Path
) -> dict[str, Any]:
    """Each photo in a fresh interpreter; wall seconds per photo, start-up included."""
    env = dict(os.environ)
    # The child must find this checkout's packages whatever the current directory is.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    walls: list[float] = []
    loads: list[float] = []
    generates: list[float] = []
    backend = "?"
    for i, photo in enumerate(photos):
        command = [sys.executable, "-m", MODULE, "--one", str(photo), "--preset", preset.value]
        command += ["--output", str(work / f"process-{i}.glb")]
        if weights is not None:
            command += ["--weights", str(weights)]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"worker failed on {photo.name}: {done.stderr.strip()[-2000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        loads.append(report["load_s"])
        generates.append(report["generate_s"])
        backend = report["backend"]
    return {
        "seconds_per_photo": statistics.fmean(walls),
        "median_s": statistics.median(walls),
        "load_median_s": statistics.median(loads),
        "generate_median_s": statistics.median(generates),
        # What the parent saw that the child could not time: interpreter start and exit.
        "interpreter_median_s": statistics.median(
            w - ld - g for w, ld, g in zip(walls, loads, generates, strict=True)
        ),
        "wall_s": sum(walls),
        "backend": backend,
    }


def one_process(
    photos: list[Path], preset: Preset, weights: Path | None, work: Path
) -> dict[str, Any]:
    """Every photo through one generator loaded once; load counted once in the wall time."""
    started = time.perf_counter()  # before the import: the per-process load includes it too
    from .generator import Generator

    generator = Generator.from_pretrained(weights)
    loaded = time.perf_counter()
    times: list[float] = []
    backend = "?"
    for i, photo in enumerate(photos):
        begin = time.perf_counter()
        result = generator.generate(photo.read_bytes(), JobOptions(preset=preset))
        (work / f"batch-{i}.glb").write_bytes(result.data)
        times.append(time.perf_counter() - begin)
        backend = result.provenance.backend
    wall = time.perf_counter() - started
    return {
        "seconds_per_photo": wall / len(photos),
        "median_s": statistics.median(times),
        "load_s": loaded - started,
        "wall_s": wall,
        "backend": backend,
    }


def bench(count: int, preset: Preset, weights: Path | None = None) -> dict[str, Any]:
    """Both ways on ``count`` photos; the one-process run goes second (warm file cache)."""
    photos = photo_paths(count)
    with tempfile.TemporaryDirectory(prefix="meshdrop-bench-processes-") as tmp:
        work = Path(tmp)
        separate = per_process(photos, preset, weights, work)
        together = one_process(photos, preset, weights, work)
    rounded = {
        name: {k: round(v, 4) if isinstance(v, float) else v for k, v in part.items()}
        for name, part in (("per_process", separate), ("one_process", together))
    }
    return {
        "photos": count,
        "preset": preset.value,
        "weights": str(weights) if weights else None,
        **rounded,
        "ratio": round(separate["seconds_per_photo"] / together["seconds_per_photo"], 2),
        "machine": machine(),
    }


def machine() -> dict[str, Any]:
    """Cores and CPU model, so a figure is never quoted without the machine it came from."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0]}


def _print_table(result: dict[str, Any]) -> None:
    p, o = result["per_process"], result["one_process"]
    print(
        f"{result['photos']} photos, preset {result['preset']}, backend {p['backend']}, "
        f"{result['machine']['cpus']} x {result['machine']['cpu_model']}"
    )
    print(f"{'mode':12} {'s/photo':>8} {'median s':>9} {'load s':>7} {'wall s':>8}")
    print(
        f"{'per process':12} {p['seconds_per_photo']:>8.3f} {p['median_s']:>9.3f} "
        f"{p['load_median_s']:>7.3f} {p['wall_s']:>8.1f}"
    )
    print(
        f"{'one process':12} {o['seconds_per_photo']:>8.3f} {o['median_s']:>9.3f} "
        f"{o['load_s']:>7.3f} {o['wall_s']:>8.1f}"
    )
    print(
        f"per process / one process: {result['ratio']:.2f}x "
        f"(per process: interpreter {p['interpreter_median_s']:.3f} s + imports and load "
        f"{p['load_median_s']:.3f} s + photo {p['generate_median_s']:.3f} s, medians)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--photos", type=int, default=100, help="photos (samples cycled)")
    parser.add_argument("--preset", type=Preset, default=Preset.FAST)
    parser.add_argument("--weights", type=Path, help="model folder (default: weight-free)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # The worker mode the per-process run starts; not meant to be called by hand.
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        output = args.output or Path(os.devnull)
        print(json.dumps(run_one(args.one, output, args.preset, args.weights)))
        return 0
    if args.photos < 1:
        parser.error("--photos must be at least 1")
    result = bench(args.photos, args.preset, args.weights)
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
