#!/usr/bin/env python3
"""MiniRocket (aeon) on the accuracy panel: the peer of `lowbit bench accuracy`.

Prints one JSON object per dataset and seed on standard output:
{"dataset", "seed", "accuracy", "fit_seconds", "predict_seconds", "train", "test"}.
Reads the same .ts files as LowBit. Unequal-length series (JapaneseVowels) are padded
at the end with their last value to the longest length in either split, since aeon's
MiniRocket takes equal lengths. Needs `pip install aeon`.
"""
import argparse, json, os, sys, time
import numpy as np


def load(path):
    from aeon.datasets import load_from_ts_file
    X, y = load_from_ts_file(path)
    return X, np.asarray(y)


def pad_to(X, length):
    """A 3-D array [series, channels, length]; a shorter series repeats its last step."""
    if isinstance(X, np.ndarray) and X.ndim == 3 and X.shape[2] == length:
        return X.astype(np.float64)
    out = np.empty((len(X), X[0].shape[0], length))
    for i, s in enumerate(X):
        n = s.shape[1]
        out[i, :, :n] = s
        out[i, :, n:] = s[:, n - 1:n]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--panel", required=True, help="folder holding NAME/NAME_TRAIN.ts and NAME/NAME_TEST.ts")
    p.add_argument("--datasets", required=True, help="comma-separated names")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    from aeon.classification.convolution_based import MiniRocketClassifier
    for name in a.datasets.split(","):
        Xtr, ytr = load(os.path.join(a.panel, name, f"{name}_TRAIN.ts"))
        Xte, yte = load(os.path.join(a.panel, name, f"{name}_TEST.ts"))
        length = max(s.shape[-1] for s in list(Xtr) + list(Xte))
        Xtr, Xte = pad_to(Xtr, length), pad_to(Xte, length)
        for seed in [int(s) for s in a.seeds.split(",")]:
            clf = MiniRocketClassifier(random_state=seed, n_jobs=a.threads)
            t0 = time.perf_counter()
            clf.fit(Xtr, ytr)
            t1 = time.perf_counter()
            pred = clf.predict(Xte)
            t2 = time.perf_counter()
            print(json.dumps({"dataset": name, "seed": seed, "accuracy": float(np.mean(pred == yte)),
                              "fit_seconds": t1 - t0, "predict_seconds": t2 - t1,
                              "train": len(ytr), "test": len(yte)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
