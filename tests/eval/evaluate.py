#!/usr/bin/env python3
"""Scores Vigil on an evaluation set made by build.py.

Usage: evaluate.py SET [--vigil PATH] [--show-missed] [-- VIGIL-SCAN-ARGS...]

SET is OUT/main or OUT/holdout. Scans SET/malicious/<category> and SET/clean with the built-in
default definitions (a fresh state dir, no cache), then prints the detection rate per category,
the clean set's size and every false positive with the threat, the detector and the rule or
plugin that fired. Exits 0 when every category reaches 95% (but ClamAV's containers, which need
archive scanning) and no clean file is detected, else 1.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

TARGET_RATE = 0.95


def scan(vigil: str, folder: Path, extra: list[str]) -> dict[str, list[dict]]:
    """Every file under `folder` with what was detected in it."""
    with tempfile.TemporaryDirectory() as state:
        command = [vigil, "--state-dir", state, "scan", "custom", str(folder), "--format", "jsonl",
                   "--no-cache", *extra]
        out = subprocess.run(command, capture_output=True)
    if out.returncode not in (0, 1):
        sys.exit(f"vigil failed ({out.returncode}): {out.stderr.decode(errors='replace')}")
    found = defaultdict(list)
    for line in out.stdout.splitlines():
        record = json.loads(line)
        if record.get("type") == "detection":
            found[record["path"]].append(record)
        elif record.get("type") in ("error", "plugin_fault"):
            print(f"  {record['type']}: {record['path']}: {record.get('reason')}", file=sys.stderr)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set", type=Path)
    parser.add_argument("--vigil", default=str(Path(__file__).resolve().parents[2] / "target/release/vigil"))
    parser.add_argument("--show-missed", action="store_true")
    parser.add_argument("--category", action="append", help="only these categories")
    parser.add_argument("--no-clean", action="store_true", help="skip the clean set")
    parser.add_argument("extra", nargs="*", help="more `vigil scan` arguments, after --")
    args = parser.parse_args()
    ok = True

    print(f"{'category':20} {'samples':>7} {'detected':>8} {'rate':>7}")
    malicious = args.set / "malicious"
    for folder in sorted(p for p in malicious.iterdir() if p.is_dir()):
        if args.category and folder.name not in args.category:
            continue
        samples = sorted(str(p) for p in folder.rglob("*") if p.is_file())
        found = scan(args.vigil, folder, args.extra)
        detected = [s for s in samples if s in found]
        rate = len(detected) / len(samples) if samples else 0.0
        mark = "" if rate >= TARGET_RATE else "  < 95%"
        ok &= rate >= TARGET_RATE or folder.name == "clamav-containers"
        print(f"{folder.name:20} {len(samples):7} {len(detected):8} {rate:7.1%}{mark}")
        if args.show_missed:
            for sample in samples:
                if sample not in found:
                    print(f"    missed {Path(sample).name}")

    if args.no_clean:
        return 0 if ok else 1
    clean = args.set / "clean"
    files = [p for p in clean.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    found = scan(args.vigil, clean, args.extra)
    print(f"\nclean set: {len(files)} files, {size / (1 << 20):.0f} MiB; false positives: {len(found)}")
    by_kind = defaultdict(int)
    for p in files:
        by_kind[p.relative_to(clean).parts[0]] += 1
    print("  " + ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items())))
    for path, records in sorted(found.items()):
        for r in records:
            print(f"  FALSE POSITIVE {path}: {r['threat']} [{r['severity']}] ({r['detector']} {r['rule']})")
    ok &= not found
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
