"""The table of Benchmarks/model_peers.sh: LowBit's rows beside PyTorch's, with ratios.

Ratio = PyTorch's time / LowBit's time, so above 1 means LowBit is faster. Pairs: LowBit's
float training step with PyTorch's float step; LowBit's int8 and int4 QAT steps with the
hand-written straight-through fake quantization of the same bits (ste_w8a8, ste_w4a8), and
its ternary and binary steps with the int8 one (PyTorch has no cheaper path for them);
forwards: LowBit's packed forwards with PyTorch's dynamic-int8 inference (its fastest int8
CPU path), float with float.
"""
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
lowbit = json.loads((out / "lowbit.json").read_text()) + json.loads((out / "lowbit-qt.json").read_text())
torch = {r["mode"]: r for r in map(json.loads, (out / "torch.jsonl").read_text().splitlines())}
fl = torch["float"]
peer_step = {"float": fl["train_ms_median"], "int8": torch["ste_w8a8"]["train_ms_median"],
             "int4": torch["ste_w4a8"]["train_ms_median"], "ternary": torch["ste_w8a8"]["train_ms_median"],
             "binary": torch["ste_w8a8"]["train_ms_median"]}
print(f"torch {fl['versions']['torch']}, 1 thread each; ratio = PyTorch / LowBit (above 1: LowBit faster)")
print(f"{'mode':<12} {'step ms':>8} {'torch':>8} {'ratio':>6}   {'fwd b32':>8} {'torch':>8} {'ratio':>6}   {'fwd b1':>7} {'torch':>7} {'ratio':>6}")
for r in lowbit:
    mode, qt = r["mode"], r["qt"]
    name = mode + ("+qt" if qt else "")
    step = peer_step[mode]
    b32 = fl["fwd_b32_ms_median"] if mode == "float" else fl["dynq_int8_fwd_b32_ms_median"]
    b1 = fl["fwd_b1_ms_median"] if mode == "float" else fl["dynq_int8_fwd_b1_ms_median"]
    print(f"{name:<12} {r['train_step_ms']:8.1f} {step:8.1f} {step / r['train_step_ms']:6.2f}   "
          f"{r['fwd_b32_ms']:8.2f} {b32:8.2f} {b32 / r['fwd_b32_ms']:6.2f}   {r['fwd_b1_ms']:7.3f} {b1:7.3f} {b1 / r['fwd_b1_ms']:6.2f}")
