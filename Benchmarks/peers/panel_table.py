#!/usr/bin/env python3
"""Joins `lowbit bench accuracy --json` and minirocket.py's lines into one Markdown table
(median test accuracy over seeds) and checks the targets: every mode at least MiniRocket
minus 2 points, every quantized mode within 1 point of float, all modes in at most 120 s
(60 s for JapaneseVowels)."""
import json, statistics, sys

lowbit = json.load(open(sys.argv[1]))
peer = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
modes = ["float", "int8", "int4", "ternary", "binary"]
names = list(dict.fromkeys(r["dataset"] for r in lowbit))
print("| dataset | MiniRocket | fit s | " + " | ".join(modes) + " | all modes s | tokens | targets |")
print("|---|---|---|" + "---|" * len(modes) + "---|---|---|")
misses = 0
for name in names:
    rows = {r["mode"]: r for r in lowbit if r["dataset"] == name}
    mr = [p for p in peer if p["dataset"] == name]
    mr_acc = statistics.median(p["accuracy"] for p in mr) if mr else float("nan")
    mr_fit = statistics.median(p["fit_seconds"] for p in mr) if mr else float("nan")
    wall = max(r["wall_seconds"] for r in rows.values())
    notes = []
    for m in modes:
        if m not in rows:
            continue
        a = rows[m]["median_accuracy"]
        if mr and a < mr_acc - 0.02 - 1e-9:
            notes.append(f"{m} {100 * (a - mr_acc):+.1f} vs MR")
        if m != "float" and "float" in rows and abs(a - rows["float"]["median_accuracy"]) > 0.01 + 1e-9 \
                and a < rows["float"]["median_accuracy"]:
            notes.append(f"{m} {100 * (a - rows['float']['median_accuracy']):+.1f} vs float")
    limit = 60 if name == "JapaneseVowels" else 120
    if wall > limit:
        notes.append(f"{wall:.0f} s > {limit} s")
    misses += bool(notes)
    cells = [f"{rows[m]['median_accuracy']:.3f}" if m in rows else "" for m in modes]
    print(f"| {name} | {mr_acc:.3f} | {mr_fit:.1f} | " + " | ".join(cells)
          + f" | {wall:.0f} | {next(iter(rows.values())).get('tokens', 'patches')}, patch {next(iter(rows.values()))['patch_length']} | {'; '.join(notes) or 'met'} |")
print(f"\n{len(names) - misses} of {len(names)} datasets meet every target.")
