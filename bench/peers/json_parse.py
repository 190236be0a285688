"""Median time of Python's json.loads on the documents `descent bench json --save-documents DIR` writes.

Usage: python3 bench/peers/json_parse.py DIR [--repeats N] [--json]
Times json.loads(bytes) (decoding included, as Descent parses from bytes) with the standard library's
C accelerator, the default. With --json it prints one JSON line per document with the keys of
`descent bench json --json` (bench, document, bytes, median_ms, mb_per_s) plus framework and variant,
after a "meta" line with the Python version.
"""
import argparse
import json
import json.scanner
import os
import platform
import statistics
import time

parser = argparse.ArgumentParser()
parser.add_argument("dir")
parser.add_argument("--repeats", type=int, default=21)
parser.add_argument("--json", action="store_true", help="print JSON lines")
args = parser.parse_args()
if args.repeats <= 0:
    parser.error("--repeats must be positive")
if args.json:
    print(json.dumps({"bench": "meta", "framework": "python", "version": platform.python_version(),
                      "c_accelerator": json.scanner.c_make_scanner is not None}))
for name in ["keys", "deep", "array"]:
    with open(os.path.join(args.dir, name + ".json"), "rb") as f:
        data = f.read()
    json.loads(data)  # warm up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        value = json.loads(data)
        times.append(time.perf_counter() - start)
        del value
    median = statistics.median(times)
    if args.json:
        print(json.dumps({"bench": "json", "framework": "python", "variant": "json.loads", "document": name,
                          "bytes": len(data), "median_ms": median * 1e3, "mb_per_s": len(data) / median / 1e6}))
    else:
        print(f"{name:6} {len(data):9d} bytes  median {median * 1e3:8.2f} ms  {len(data) / median / 1e6:7.1f} MB/s")
