"""A/B of two image-rd training runs from their logs (log.jsonl, or a model's training_log.jsonl):
at every step both logged, the BD-rate of B against A on the development crops' (bpp, PSNR) at
the trained qualities, and MS-SSIM at equal quality; then the mean over the steps, since one
step's development figures swing by several tenths of a dB.

    .venv/bin/python -m benchmarks.image_rd_ab A/log.jsonl B/log.jsonl --from 18500 [--out image_rd_ab.md]

`--last` compares each log's last development figures instead (a continued run against the model
it started from, which logged at other steps).
"""

import argparse
import json

import numpy as np

from benchmarks import write_result
from benchmarks.image_codecs import bd_rate


def dev_points(path: str, start: int) -> dict:
    out = {}
    for line in open(path):
        r = json.loads(line)
        if "dev" in r and r["step"] >= start:
            out[r["step"]] = r["dev"]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--from", dest="start", type=int, default=0, help="first step compared")
    parser.add_argument("--last", action="store_true", help="compare A's last logged step with B's last")
    parser.add_argument("--out", default=None, help="keep the table in benchmarks/results/OUT")
    args = parser.parse_args(argv)
    a, b = dev_points(args.a, args.start), dev_points(args.b, args.start)
    lines = [f"# image-rd A/B: B = {args.b} against A = {args.a}", "",
             "| step | BD-rate of B (PSNR) | mean MS-SSIM B - A |", "|---|---|---|"]
    pairs = [(max(a), max(b))] if args.last else [(step, step) for step in sorted(set(a) & set(b))]
    rates, ssims = [], []
    for sa, sb in pairs:
        da, db = a[sa], b[sb]
        qs = sorted(set(da) & set(db))
        ca, cb = (np.array([[d[q]["bpp"], d[q]["psnr"]] for q in qs]) for d in (da, db))
        rates.append(bd_rate(cb, ca))
        ssims.append(np.mean([db[q]["msssim"] - da[q]["msssim"] for q in qs]))
        lines.append(f"| {sa if sa == sb else f'A {sa}, B {sb}'} | {rates[-1]:+.1f} % | {ssims[-1]:+.4f} |")
    lines.append(f"| mean of {len(rates)} | {np.mean(rates):+.1f} % | {np.mean(ssims):+.4f} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        write_result(args.out, text)
    else:
        print(text)


if __name__ == "__main__":
    main()
