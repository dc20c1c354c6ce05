#!/usr/bin/env python3
"""Writes CardanoSentiment/ as a classification problem.

In the archive CardanoSentiment is a regression problem (@targetlabel: a sentiment score
per series of 24 hourly steps, 2 channels). The panel classifies its sign instead:
"positive" for a score above 0, "negative" otherwise (0 included). Usage:
    python3 cardano_classes.py SRC_DIR DST_DIR
with SRC_DIR holding CardanoSentiment_{TRAIN,TEST}.ts as published.
"""
import os
import sys

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for split in ("TRAIN", "TEST"):
    out = []
    for line in open(os.path.join(src, f"CardanoSentiment_{split}.ts")):
        if line.startswith("@targetlabel"):
            out.append("@classLabel true negative positive\n")
        elif line.startswith("@") or not line.strip():
            out.append(line)
        else:
            *channels, target = line.rstrip("\n").split(":")
            out.append(":".join(channels) + ":" + ("positive" if float(target) > 0 else "negative") + "\n")
    with open(os.path.join(dst, f"CardanoSentiment_{split}.ts"), "w") as f:
        f.writelines(out)
