#!/usr/bin/env python3
"""Diff two `modeflow check --json` outputs, minus timings (issue 14: behaviour unchanged).

    python3 scripts/check-diff.py BEFORE.json AFTER.json [--rtol 1e-12]

Reports claims added or removed, claim status / verdict changes, rows added or removed (by
label), row verdict changes, and numbers (predicted, measured, error, tolerance) that differ by
more than rtol relative. Wall-clock fields ("seconds") are ignored; notes are compared with
their numbers masked only when --loose-notes is given. Exit status 0 when nothing but timings
differ, 1 otherwise.
"""
import json
import math
import re
import sys

NUMS = ("predicted", "measured", "error", "tolerance")


def load(path):
    with open(path) as f:
        return {c["id"]: c for c in json.load(f)["claims"]}


def close(a, b, rtol):
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if math.isnan(a) and math.isnan(b):
        return True
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-300)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    rtol = 1e-12
    if "--rtol" in argv:
        rtol = float(argv[argv.index("--rtol") + 1])
        args.remove(argv[argv.index("--rtol") + 1])
    loose_notes = "--loose-notes" in argv
    before, after = load(args[0]), load(args[1])
    out = []
    for cid in sorted(set(before) - set(after)):
        out.append(f"- claim {cid} removed")
    for cid in sorted(set(after) - set(before)):
        out.append(f"+ claim {cid} added ({after[cid]['status']}, {after[cid]['verdict']})")
    for cid in sorted(set(before) & set(after)):
        b, a = before[cid], after[cid]
        for key in ("status", "verdict", "title"):
            if b.get(key) != a.get(key):
                out.append(f"~ {cid} {key}: {b.get(key)!r} -> {a.get(key)!r}")
        if b.get("problems") != a.get("problems"):
            out.append(f"~ {cid} problems: {b.get('problems')} -> {a.get('problems')}")
        brows = {r["label"]: r for r in b["rows"]}
        arows = {r["label"]: r for r in a["rows"]}
        for lab in brows.keys() - arows.keys():
            out.append(f"- {cid} row {lab!r}")
        for lab in arows.keys() - brows.keys():
            out.append(f"+ {cid} row {lab!r} ({arows[lab]['verdict']})")
        for lab in brows.keys() & arows.keys():
            rb, ra = brows[lab], arows[lab]
            if rb["verdict"] != ra["verdict"]:
                out.append(f"~ {cid} row {lab!r} verdict {rb['verdict']} -> {ra['verdict']}")
            for k in NUMS:
                if not close(rb.get(k), ra.get(k), rtol):
                    out.append(f"~ {cid} row {lab!r} {k}: {rb.get(k)!r} -> {ra.get(k)!r}")
            nb, na = rb.get("note", ""), ra.get("note", "")
            if loose_notes:
                nb, na = re.sub(r"[-+0-9.e]+", "#", nb), re.sub(r"[-+0-9.e]+", "#", na)
            if nb != na:
                out.append(f"~ {cid} row {lab!r} note: {rb.get('note')!r} -> {ra.get('note')!r}")
    print("\n".join(out) if out else "identical (timings ignored)")
    print(f"{len(before)} claims before, {len(after)} after, {len(out)} differences", file=sys.stderr)
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
