"""Median time of Python's json.loads on the documents `descent bench json --save-documents DIR` writes.

Usage: python3 bench/peers/json_parse.py DIR [--repeats N]
Times json.loads(bytes) (decoding included, as Descent parses from bytes) with the standard library's
C accelerator, the default.
"""
import argparse
import json
import os
import statistics
import time

parser = argparse.ArgumentParser()
parser.add_argument("dir")
parser.add_argument("--repeats", type=int, default=21)
args = parser.parse_args()
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
    print(f"{name:6} {len(data):9d} bytes  median {median * 1e3:8.2f} ms  {len(data) / median / 1e6:7.1f} MB/s")
