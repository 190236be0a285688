#!/usr/bin/env python3
"""Regenerates the seed corpus Corpus/<Target>/ from the test fixtures and hand-made edge cases.

Run from anywhere: python3 Fuzz/make-corpus.py. The output is committed; keep it small (< 1 MB).
File names are the seeds' descriptions (libFuzzer does not care about names).
"""
import glob
import gzip
import json
import os
import shutil

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
CORPUS = os.path.join(FUZZ, "Corpus")


def write(target, name, content):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def rounded(value):
    """Floats to 4 significant digits, so the seeds stay small."""
    if isinstance(value, float):
        return float("%.4g" % value)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def json_seeds():
    t = "FuzzJSON"
    cases = {
        "empty-object": "{}", "empty-array": "[]", "null": "null", "true": "true", "false": " false ",
        "zero": "0", "negative-zero": "-0", "negative-zero-float": "-0.0", "int-max": "9223372036854775807",
        "int-min": "-9223372036854775808", "int-too-big": "123456789012345678901234567890",
        "float-exponents": "[1e308, 1e400, -1e-400, 1.5E-7, 2e+3, 0.1, 1e16, 1e-5]",
        "python-specials": "[NaN, Infinity, -Infinity]",
        "escapes": r'"\" \\ \/ \b \f \n \r \t"',
        "unicode-escapes": r'["\u00e9", "\u20ac", "\ud83d\ude00", "\u0000"]',
        "raw-utf8": '"h\u00e9llo \u4e16\u754c \U0001F600"',
        "duplicate-keys": '{"a": 1, "b": 2, "a": 3}',
        "whitespace": ' \t\r\n{ "k" : [ 1 , 2 ] }\n',
        "nested-64": "[" * 64 + "]" * 64, "nested-2000": "[" * 2000 + "]" * 2000,
        "nested-objects": '{"a": ' * 20 + "{}" + "}" * 20,
        "mixed": '{"name": "Adam", "values": [1, 2.5, -3e-2, true, null, "x"], "config": {"nested": [[], {}]}}',
        "trailing-garbage": '{"a": 1} x', "unterminated": '{"a": [1, 2', "bad-escape": r'"\x"',
        "lone-high-surrogate": r'"\ud800"', "leading-zeros": "[01, -01, 00.5]", "bare-minus": "-",
    }
    for name, text in cases.items():
        write(t, name, text)
    for path in sorted(glob.glob(os.path.join(FIXTURES, "configs", "*_custom.json")))[:4]:
        with open(path) as f:
            write(t, "fixture-" + os.path.basename(path), json.load(f)["python_json"])


def optimizer_config_seeds():
    t = "FuzzOptimizerConfig"
    for path in sorted(glob.glob(os.path.join(FIXTURES, "configs", "*.json"))):
        name = os.path.basename(path)
        if name == "INDEX.json" or name.startswith("constraint_") or name.startswith("schedule_"):
            continue
        with open(path) as f:
            write(t, name, json.load(f)["python_json"])
    # Keras 3's family ("module": "keras.optimizers"), one config per class with its options set.
    for path in sorted(glob.glob(os.path.join(FIXTURES, "keras3_configs", "*_custom.json"))):
        with open(path) as f:
            fixture = json.load(f)
        if fixture.get("kind") == "optimizer":
            write(t, "keras3-" + os.path.basename(path), compact(fixture["serialized"]))
    # Schedules and bare names: the other forms deserialize(json:) accepts.
    for path in sorted(glob.glob(os.path.join(FIXTURES, "configs", "schedule_*.json")))[:4]:
        with open(path) as f:
            schedule = json.load(f)["object"]
        write(t, "sgd-with-" + os.path.basename(path),
              compact({"class_name": "SGD", "config": {"learning_rate": schedule, "momentum": 0.5}}))
    for name in ["adam", "SGD", "rmsprop", "Ftrl", "nadam", "adamax", "adagrad", "adadelta", "adamw", "lion"]:
        write(t, "bare-" + name, name)
    write(t, "quoted-name", '"adam"')
    write(t, "legacy-lr", '{"class_name": "Adam", "config": {"lr": 0.5, "clipvalue": 1}}')


def replay_seeds():
    t = "FuzzReplay"
    picks = [
        "spec_sgd", "spec_adam", "spec_ftrl_l1_l2_shrinkage_beta", "spec_rmsprop_momentum_centered",
        "denormal_adam", "missing_nadam_mixed_dtype", "adadelta_default_dense", "adagrad_sparse",
        "adam_amsgrad_sparse", "adamax_sparse", "ftrl_all_sparse", "nadam_schedule_decay_sparse",
        "rmsprop_centered_sparse", "sgd_nesterov_sparse", "clipnorm_adagrad_sparse", "global_clipnorm_adam_dense",
        "clipvalue_clipnorm_sgd_dense", "constraint_maxnorm_sgd_momentum", "constraint_minmaxnorm_adam",
        "constraint_nonneg_adam", "constraint_unitnorm_adam", "decay_with_schedule_adam", "float64_adam_sparse",
        "float64_ftrl_shrinkage", "sched_cosine_restarts_sgd", "sched_cosine_warmup_adam",
        "sched_exponential_staircase_adam", "sched_inverse_time_sgd", "sched_piecewise_sgd",
        "sched_polynomial_cycle_sgd", "missing_adam_sparse",
    ]
    for name in picks:
        with open(os.path.join(FIXTURES, "optimizers", name + ".json")) as f:
            document = json.load(f)["input"]
        document["steps"] = document["steps"][:2]
        write(t, name + ".json", compact(rounded(document)))
    small = {
        "optimizer": "adam",
        "variables": [{"name": "v", "shape": [2], "dtype": "float32", "value": [1, 2], "constraint": None},
                      {"name": "s", "shape": [], "dtype": "float64", "value": [0.5]}],
        "steps": [{"gradients": [{"dense": [0.1, -0.1]}, None]}, {"gradients": [None, {"dense": [1]}]}],
    }
    write(t, "hand-bare-name-scalar.json", compact(small))
    write(t, "hand-empty.json", compact({"optimizer": {"class_name": "SGD"}, "variables": [], "steps": []}))
    write(t, "hand-zero-size.json", compact({
        "optimizer": {"class_name": "Adagrad", "config": {}},
        "variables": [{"name": "z", "shape": [0, 3], "value": []}],
        "steps": [{"gradients": [{"indices": [], "values": [], "dense_shape": [0, 3]}]}]}))


def weights_seeds():
    """Weights for the harness model: Dense 4->3, Dense 3->2."""
    t = "FuzzWeightsFile"
    shapes = [("fuzz_model/dense/kernel:0", [4, 3]), ("fuzz_model/dense/bias:0", [3]),
              ("fuzz_model/dense_1/kernel:0", [3, 2]), ("fuzz_model/dense_1/bias:0", [2])]

    def document(values_for, dtype="float32"):
        weights = []
        for i, (name, shape) in enumerate(shapes):
            count = 1
            for d in shape:
                count *= d
            weights.append({"name": name, "shape": shape, "dtype": dtype, "values": values_for(i, count)})
        return {"format": "descent-weights", "version": 1, "weights": weights}

    write(t, "valid.json", json.dumps(document(lambda i, n: [0.25 * (k - n / 2) for k in range(n)])))
    write(t, "zeros-float64.json", json.dumps(document(lambda i, n: [0.0] * n, "float64")))
    write(t, "specials.json", json.dumps(document(lambda i, n: [float("nan"), float("inf")] + [1e-45] * (n - 2))))
    write(t, "ints.json", json.dumps(document(lambda i, n: list(range(n)))))
    wrong = document(lambda i, n: [1.0] * n)
    wrong["weights"][2]["shape"] = [2, 3]
    write(t, "wrong-shape.json", json.dumps(wrong))
    short = document(lambda i, n: [1.0] * n)
    short["weights"][3]["values"] = [1.0]
    write(t, "short-values.json", json.dumps(short))
    write(t, "too-few.json", json.dumps({"format": "descent-weights", "version": 1, "weights": []}))
    write(t, "other-format.json", '{"format": "keras", "weights": []}')


def digits_seeds():
    t = "FuzzDigitsFile"
    with gzip.open(os.path.join(ROOT, "Sources", "DescentKeras", "Resources", "digits.csv.gz"), "rb") as f:
        lines = f.read().split(b"\n")[:3]
    text = b"\n".join(lines) + b"\n"
    write(t, "three-rows.csv", text)
    write(t, "three-rows.csv.gz", gzip.compress(text, mtime=0))
    write(t, "crlf.csv", text.replace(b"\n", b"\r\n"))
    write(t, "bad-label.csv", lines[0].rsplit(b",", 1)[0] + b",12\n")
    write(t, "short-row.csv", b"0,1,2,3\n")
    write(t, "empty.csv", b"")
    write(t, "truncated.gz", gzip.compress(text, mtime=0)[:40])


if __name__ == "__main__":
    # Only the targets made here: the Keras file targets' seeds (FuzzKerasArchive, FuzzKerasH5) are
    # committed files this script does not make.
    for made in ["FuzzJSON", "FuzzOptimizerConfig", "FuzzReplay", "FuzzWeightsFile", "FuzzDigitsFile"]:
        shutil.rmtree(os.path.join(CORPUS, made), ignore_errors=True)
    json_seeds()
    optimizer_config_seeds()
    replay_seeds()
    weights_seeds()
    digits_seeds()
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(CORPUS, "*", "*")))
    print("seed corpus: %d files, %d bytes" % (len(glob.glob(os.path.join(CORPUS, "*", "*"))), total))
