"""Benchmark: Style Studio's image import against a naive loop, side by side.

Generates N camera-sized JPEGs (default 150 at 4000x3000, with EXIF incl. GPS) in a
temporary folder, then runs, each in its own child process (so peak RSS is that
process's own):

- naive:  for each file: full decode, thumbnail, save the thumbnail (WebP).
- ingest: `Images.ingest` on the same files: hash, check, stored copy without
          metadata, thumbnail, perceptual hash, sharpness, records in the store.

Each mode runs `--rounds` times, alternating; the best wall time counts (the machine
is shared), the highest peak RSS is reported. The last line reads
`ingest: speedup=<x> peak_rss_mb=<y>`.

    .venv/bin/python bench/ingest.py [--count 150] [--orientation 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
THUMB_SIDE = 384


def make_jpegs(folder: Path, count: int, size: tuple[int, int], orientation: int) -> None:
    """Distinct photo-like JPEGs: a noisy gradient base, varied shapes, camera EXIF."""
    rng = np.random.default_rng(0)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=-1)
    base += rng.normal(0, 6, base.shape).astype(np.float32)
    base_image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    for number in range(count):
        channels = base_image.split()
        order = rng.permutation(3)
        im = Image.merge("RGB", [channels[i] for i in order])
        draw = ImageDraw.Draw(im)
        for _ in range(25):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            box = [x0, y0, x0 + int(rng.integers(80, w // 3)), y0 + int(rng.integers(80, h // 3))]
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
        exif = Image.Exif()
        exif[0x013B], exif[0x0110], exif[0x0112] = "Bench Painter", "Bench Camera", orientation
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", (51.0, 30.0, float(number))
        im.save(folder / f"photo_{number:03d}.jpg", quality=90, exif=exif)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would include the parent's peak,
    which Linux carries across fork+exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_naive(files: list[Path], out: Path) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for path in files:
        with Image.open(path) as im:
            im.load()  # full decode
            im.thumbnail((THUMB_SIDE, THUMB_SIDE))
            im.save(out / f"{path.stem}.webp", quality=82, method=1)  # as the app does
    return time.perf_counter() - start, time.process_time() - cpu


def run_ingest(files: list[Path], out: Path) -> tuple[float, float]:
    """The real import path, built from the light services (no captioner/torch imports)."""
    sys.path.insert(0, str(ROOT))
    from style_studio.base.erasure import Eraser
    from style_studio.base.jobs import JobRunner
    from style_studio.base.store import Store
    from style_studio.base.styles import Styles
    from style_studio.base.workspace import Workspace
    from style_studio.captions.records import CaptionRecords
    from style_studio.images.service import Images

    workspace = Workspace(out / "workspace").ensure()
    store = Store(workspace.db_path)
    styles = Styles(store, workspace)
    jobs = JobRunner(store)
    images = Images(store, workspace, styles, CaptionRecords(store), Eraser(store, workspace),
                    jobs)
    style = styles.create("Bench", trigger="benchstyle")
    start, cpu = time.perf_counter(), time.process_time()
    report = images.ingest(style.id, files)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    jobs.shutdown()
    store.close()
    if len(report.added) != len(files):
        raise SystemExit(f"ingest added {len(report.added)} of {len(files)}: "
                         f"{report.rejected[:3]} {report.duplicates[:3]}")
    return elapsed, cpu


def child(mode: str, source: Path, out: Path) -> None:
    """Run one mode in this (child) process and print one JSON line."""
    files = sorted(source.glob("*.jpg"))
    out.mkdir(parents=True, exist_ok=True)
    wall, cpu = run_naive(files, out) if mode == "naive" else run_ingest(files, out)
    print(json.dumps({"mode": mode, "images": len(files), "wall_s": wall, "cpu_s": cpu,
                      "peak_rss_mb": peak_rss_mb()}))


def measure(mode: str, source: Path, scratch: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=scratch))
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--source", str(source),
                           "--out", str(out)], capture_output=True, text=True, check=False)
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--orientation", type=int, default=1,
                        help="EXIF orientation of the generated files (6: turned camera)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["naive", "ingest"], help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.source, args.out)
        return

    scratch = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        source = scratch / "jpegs"
        source.mkdir()
        start = time.perf_counter()
        make_jpegs(source, args.count, (args.width, args.height), args.orientation)
        size_mb = sum(p.stat().st_size for p in source.iterdir()) / 2**20
        print(f"generated {args.count} JPEGs {args.width}x{args.height} "
              f"(orientation {args.orientation}, {size_mb:.0f} MB) in "
              f"{time.perf_counter() - start:.0f} s")
        results: dict[str, list[dict]] = {"naive": [], "ingest": []}
        for _ in range(args.rounds):
            for mode in results:
                results[mode].append(measure(mode, source, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"{'mode':<8}{'images':>8}{'best wall s':>13}{'ms/image':>10}{'CPU s':>8}"
          f"{'peak RSS MB':>13}   rounds (wall s)")
    best, cpu = {}, {}
    for mode, runs in results.items():
        best[mode] = min(r["wall_s"] for r in runs)
        cpu[mode] = min(r["cpu_s"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs)
        print(f"{mode:<8}{runs[0]['images']:>8}{best[mode]:>13.1f}"
              f"{best[mode] / runs[0]['images'] * 1000:>10.0f}{cpu[mode]:>8.1f}{rss:>13.0f}"
              f"   {walls}")
    print(f"CPU-time ratio naive/ingest: {cpu['naive'] / cpu['ingest']:.2f}")
    ingest_rss = max(r["peak_rss_mb"] for r in results["ingest"])
    print(f"ingest: speedup={best['naive'] / best['ingest']:.2f} peak_rss_mb={ingest_rss:.0f}")


if __name__ == "__main__":
    main()
