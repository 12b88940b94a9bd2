"""Seconds per stage and peak memory of the generator, per preset, on the sample photos.

``python -m gpu_container.meshgen.bench [--repeat 3] [--photos a.jpg b.jpg | --objects bottle,box]
[--json]``: by default the project's ``samples/*.jpg``; ``--objects`` renders known shapes instead.

Goals on a development CPU: balanced <= 3 s and <= 1 GiB, fast <= 1.5 s per photo.
Peak memory is the process' resident high-water mark (``getrusage``), so run presets in
increasing order (as here) to read each preset's own peak; the Python heap peak of each
preset alone (``tracemalloc``, numpy buffers included) is reported too.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from PIL import Image

from meshdrop_contract import JobOptions, Preset

from .generator import Generator
from .scenes import render, scenes

GOALS_S = {Preset.FAST: 1.5, Preset.BALANCED: 3.0}
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
GOAL_MEMORY_MIB = 1024


def _photo(name: str, size: int = 640) -> bytes:
    rgb, _ = render(
        scenes()[name], size=size, yaw_deg=20.0, elevation_deg=8.0, background="gradient"
    )
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(photos: dict[str, bytes], repeat: int) -> list[dict[str, object]]:
    objects = list(photos)
    generator = Generator.from_pretrained()
    generator.generate(photos[objects[0]], JobOptions(preset=Preset.FAST))  # warm caches
    rows = []
    for preset in (Preset.FAST, Preset.BALANCED, Preset.QUALITY):
        stages: dict[str, list[float]] = {}
        totals: list[float] = []
        cpu: list[float] = []
        for _ in range(repeat):
            for name in objects:
                start, start_cpu = time.perf_counter(), time.process_time()
                result = generator.generate(photos[name], JobOptions(preset=preset))
                totals.append(time.perf_counter() - start)
                # CPU seconds too: on a shared machine wall time mostly measures the neighbours.
                cpu.append(time.process_time() - start_cpu)
                for stage, seconds in result.timings.items():
                    stages.setdefault(stage, []).append(seconds)
        # A separate traced run: tracemalloc slows every allocation and would skew timings.
        tracemalloc.start()
        for name in objects:
            generator.generate(photos[name], JobOptions(preset=preset))
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append(
            {
                "preset": preset.value,
                "runs": len(totals),
                "median_s": round(statistics.median(totals), 3),
                "max_s": round(max(totals), 3),
                "cpu_median_s": round(statistics.median(cpu), 3),
                "stages_median_s": {k: round(statistics.median(v), 3) for k, v in stages.items()},
                "heap_peak_mib": round(heap_peak / 2**20, 1),
                "rss_peak_mib": round(_rss_mib(), 1),
                "goal_s": GOALS_S.get(preset),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--photos", nargs="+", type=Path, default=sorted(SAMPLES.glob("*.jpg")))
    parser.add_argument("--objects", help="render these known shapes instead, e.g. bottle,box")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.objects:
        objects = [o.strip() for o in args.objects.split(",") if o.strip()]
        unknown = set(objects) - set(scenes())
        if unknown:
            parser.error(f"unknown objects {sorted(unknown)}; choose from {sorted(scenes())}")
        photos = {name: _photo(name) for name in objects}
    else:
        if not args.photos:
            parser.error(f"no photos: {SAMPLES} has no *.jpg and none were given")
        photos = {p.name: p.read_bytes() for p in args.photos}
    rows = bench(photos, args.repeat)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(
        f"{'preset':9} {'runs':>4} {'median s':>9} {'max s':>7} {'cpu s':>6} {'goal s':>6}  "
        f"{'background':>10} {'reconstruct':>11} {'export':>7} {'heap MiB':>8} {'RSS MiB':>8}"
    )
    for r in rows:
        st = r["stages_median_s"]
        assert isinstance(st, dict)
        goal = r["goal_s"] if r["goal_s"] is not None else "-"
        print(
            f"{r['preset']:9} {r['runs']:>4} {r['median_s']:>9} {r['max_s']:>7} "
            f"{r['cpu_median_s']:>6} {goal:>6}  "
            f"{st.get('background', 0):>10} {st.get('reconstruct', 0):>11} "
            f"{st.get('export', 0):>7} {r['heap_peak_mib']:>8} {r['rss_peak_mib']:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
