#!/usr/bin/env python3
"""The benchmark of issue 10, in one command (see benchmarks/README.md):

    python benchmarks/run.py [--quick] [--repeats N] [--rollbacks N] [--baseline PATH]

Provisions the sandbox of this checkout (and of the baseline checkout, each on its own folder and ports) with
the checkout's own `rollbackctl sandbox up`, measures the platform's capacity, then takes every measure under a
load of half that capacity, alternating between the checkouts, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import load, report  # noqa: E402
from benchmarks.measures import MEASURES, Result  # noqa: E402
from benchmarks.stats import find_capacity  # noqa: E402
from benchmarks.target import SetupFailed, Target  # noqa: E402

ORDER = ("essential", "manual", "app_rollback", "code-only", "full")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 rollbacks under load, short capacity steps")
    parser.add_argument("--repeats", type=int, help="repeats of each measure (default 3; --quick 1)")
    parser.add_argument("--rollbacks", type=int,
                        help="rollbacks under load per checkout, full and code-only together (default 10; --quick 2)")
    parser.add_argument("--baseline", type=Path, help="another checkout of the project, measured side by side")
    parser.add_argument("--sandbox-dir", type=Path,
                        default=Path(os.environ.get("ROLLBACK_SANDBOX_DIR") or HERE.parent / ".sandbox-bench"),
                        help="this checkout's sandbox (default $ROLLBACK_SANDBOX_DIR, else .sandbox-bench/)")
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("ROLLBACK_SANDBOX_PORT_BASE") or 18180),
                        help="its ports (web; app and database the next two); the baseline's are 100 higher")
    parser.add_argument("--measures", default=",".join(ORDER), help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--json", type=Path, help="also write every result there")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.rollbacks = args.rollbacks if args.rollbacks is not None else (2 if args.quick else 10)
    args.measures = [m for m in args.measures.split(",") if m]
    unknown = set(args.measures) - set(ORDER)
    if unknown or args.repeats < 1:
        parser.error(f"unknown measures {sorted(unknown)}" if unknown else "--repeats must be at least 1")
    return args


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def capacity(target: Target, quick: bool) -> float:
    seconds = 5.0 if quick else 8.0  # long enough for a platform that slows as requests queue to show it
    found = find_capacity(lambda rate: load.step(target.base_url, target.password(), rate, seconds),
                          start=4.0, factor=1.5, max_rate=300.0, max_steps=10, p95_limit=1.0)
    for s in found.steps:
        say(f"{target.name}: capacity step {s.rate:.1f}/s: achieved {s.achieved:.1f}/s, p95 {s.p95:.3f} s, "
            f"{s.errors} failed")
    say(f"{target.name}: capacity {found.rate:.1f} requests/s (limited by {found.limited_by})")
    return found.rate


def take(name: str, target: Target, rate: float, incident: str) -> Result:
    say(f"{target.name}: {name} ({incident}) ...")
    try:
        result = MEASURES[name](target, rate, incident)
    except SetupFailed as exc:
        result = Result(name, target.name, False, note=f"setup failed: {exc}")
    say(f"{target.name}: {name}: {'ok' if result.ok else 'FAILED'} wall {result.wall or 0:.1f} s, "
        f"503 window {result.window or 0:.1f} s, {result.failed} of {result.requests} failed "
        f"{result.note[:200]}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    current = Target("after" if args.baseline else "now", HERE.parent, args.sandbox_dir.resolve(), args.port_base)
    targets = [current]
    if args.baseline:
        base_dir = current.sandbox_dir.with_name(current.sandbox_dir.name + "-base")
        targets.insert(0, Target("before", args.baseline.resolve(), base_dir, args.port_base + 100))
    started = time.monotonic()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    for target in targets:
        say(f"{target.name}: provisioning {target.sandbox_dir} from {target.checkout} (port {target.port_base}) ...")
        provisioned = target.provision(f"BENCH-{stamp}-PREPARE-{target.name}")
        say(f"{target.name}: sandbox up in {provisioned.wall:.0f} s")
    capacities = {t.name: capacity(t, args.quick) for t in targets}
    rate = max(1.0, 0.5 * min(capacities.values()))
    say(f"load for every measure: {rate:.1f} requests/s (half the lower capacity), on both checkouts")
    results: list[Result] = []

    def each(measure: str, n: int, tag: str) -> None:
        order = targets if n % 2 == 0 else targets[::-1]  # alternate which checkout goes first
        for target in order:
            results.append(take(measure, target, rate, f"BENCH-{stamp}-{tag}{n}-{measure.upper()}-{target.name}"))

    for n in range(args.repeats):
        for measure in (m for m in ORDER if m in args.measures):
            each(measure, n, "R")
    rollbacks = [m for m in ("code-only", "full") if m in args.measures]
    extra = max(0, args.rollbacks - args.repeats * len(rollbacks)) if rollbacks else 0
    for n in range(extra):
        each(rollbacks[n % len(rollbacks)], n, "X")
    names = [t.name for t in targets]
    print(f"\n## Benchmark (issue 10): {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{args.repeats} repeat(s), {os.cpu_count()} cores, {time.monotonic() - started:.0f} s\n")
    print(f"Checkouts: {', '.join(f'{t.name} = {t.checkout}' for t in targets)}. Every measure under a load of "
          f"{rate:.1f} requests/s (half the lower measured capacity); median (min-max) over the repeats.\n")
    print(report.table(results, names, {"capacity": capacities, "rate": rate}))
    failed = report.failures(results)
    if failed:
        print("\nFailed measures:\n" + failed)
    out = args.json or current.state_dir / f"bench-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"capacity": capacities, "rate": rate, "results": [asdict(r) for r in results]},
                              indent=1, default=str))
    say(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
