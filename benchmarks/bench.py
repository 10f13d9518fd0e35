"""Benchmark: `parity run` against the comparison done by hand (benchmarks/naive.py).

Both do the same fits: six politeness models, lme4 + statsmodels + Bambi with the seed's
sampler settings. Measured, for each, over `--reps` repetitions: wall time and the peak
resident memory of the whole process tree (parity's workers included), sampled every
50 ms from /proc. `parity run` is measured cold (an empty fit cache and JAX compilation
cache) and warm (the same command again). Medians and the ratios to the naive script are
printed as a table and written as JSON. This is a benchmark, not a test: nothing asserts.

    .venv/bin/python benchmarks/bench.py --reps 3 --json benchmarks/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants."""
    kids = _children()
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            pass
        stack.extend(kids.get(p, []))
    return total


def measure(cmd: list[str], env: dict[str, str],
            ok: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """Wall seconds and peak tree RSS (bytes) of one run of `cmd`, which must exit with
    one of `ok`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    ap.add_argument("--parity", default=str(Path(sys.executable).with_name("parity")))
    ap.add_argument("--jobs", type=int, default=None, help="parity run --jobs")
    args = ap.parse_args()

    runs: dict[str, list[tuple[float, int]]] = {"naive": [], "parity cold": [],
                                                "parity warm": []}
    for rep in range(args.reps):
        runs["naive"].append(measure([sys.executable, str(HERE / "naive.py")], dict(os.environ)))
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PARITY_CACHE_DIR=str(Path(tmp) / "cache"))
            cmd = [args.parity, "run", "--quiet", "--out", str(Path(tmp) / "out")]
            if args.jobs:
                cmd += ["--jobs", str(args.jobs)]
            runs["parity cold"].append(measure(cmd, env))
            runs["parity warm"].append(measure(cmd, env))
        print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} s" for k, v in runs.items()),
              file=sys.stderr, flush=True)

    med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v))
           for k, v in runs.items()}
    naive_wall, naive_mem = med["naive"]
    rows = []
    print(f"{'':14} {'wall (median)':>14} {'x naive':>8} {'peak RSS':>10} {'x naive':>8}")
    for name, (wall, mem) in med.items():
        rows.append({"run": name, "wall_s": wall, "wall_ratio": wall / naive_wall,
                     "peak_rss_mb": mem / 2**20, "rss_ratio": mem / naive_mem,
                     "walls": [w for w, _ in runs[name]],
                     "peak_rss_mb_all": [m / 2**20 for _, m in runs[name]]})
        print(f"{name:14} {wall:12.2f} s {wall / naive_wall:8.3f} {mem / 2**20:8.0f} MB "
              f"{mem / naive_mem:8.2f}")
    args.json.write_text(json.dumps({
        "reps": args.reps, "cpus": os.cpu_count(), "python": platform.python_version(),
        "machine": platform.machine(), "rows": rows}, indent=2) + "\n")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
