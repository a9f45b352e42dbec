#!/usr/bin/env python3
"""Picks the CI subset of an evaluation set made by build.py and stores it neutralised.

Usage: subset.py SET [--per-category N] [--clean N] > tests/eval/subset.jsonl

Takes the N smallest samples of each malicious category (at most 48 KiB each, from as many
different inputs as there are) and N hard clean files of each kind (at most 16 KiB), and writes one JSON line per file:
category, name, whether it must be detected, and its bytes XOR 0x5A in base64 — so no live
sample sits in the repository and no scanner flags it; tests/detection_eval.rs decodes them.
ClamAV's containers are left out (they need archive scanning).
"""

import argparse
import base64
import json
import sys
from pathlib import Path

KEY = 0x5A
LIMIT = 48 * 1024
CLEAN_LIMIT = 16 * 1024


def record(category, path: Path, expect: str):
    data = bytes(b ^ KEY for b in path.read_bytes())
    return {"category": category, "name": path.name, "expect": expect,
            "xor5a_base64": base64.b64encode(data).decode()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set", type=Path)
    parser.add_argument("--per-category", type=int, default=4)
    parser.add_argument("--clean", type=int, default=4, help="clean files per kind")
    args = parser.parse_args()
    manifest = json.loads((args.set / "manifest.json").read_text())
    for category, samples in sorted(manifest.items()):
        if category == "clamav-containers":
            continue
        folder = args.set / "malicious" / category
        seen_inputs, chosen = set(), []
        for sample in sorted(samples, key=lambda s: (folder / s["sample"]).stat().st_size):
            path = folder / sample["sample"]
            if path.stat().st_size > LIMIT or sample["input"] in seen_inputs:
                continue
            seen_inputs.add(sample["input"])
            chosen.append(path)
            if len(chosen) == args.per_category:
                break
        for path in chosen:
            print(json.dumps(record(category, path, "detect")))
    clean = args.set / "clean"
    for kind in sorted(p for p in clean.iterdir() if p.is_dir()):
        files = sorted((p for p in kind.iterdir() if p.is_file() and 512 < p.stat().st_size <= CLEAN_LIMIT),
                       key=lambda p: p.name)[: args.clean]
        for path in files:
            print(json.dumps(record("clean/" + kind.name, path, "clean")))


if __name__ == "__main__":
    sys.exit(main())
