#!/usr/bin/env python3
"""Check Keras files that Descent wrote against the real tf_keras 2.21 and Keras 3.15.1 (opt-in, needs the venv).

How to use
----------
    /work/venv-tf/bin/python scripts/check_keras_files.py DIR

DIR holds what Descent wrote (any file may be missing; its checks are then reported as SKIP):
    model.h5          tf_keras full-model HDF5 layout (model.save(save_format="h5"))
    weights.h5        tf_keras save_weights HDF5 layout
    model.keras       Keras 3 zip (metadata.json, config.json, model.weights.h5)
    model.weights.h5  Keras 3 save_weights layout
    expected.json     {"x": [[...], ...], "x_dtype": "float32" | "int32", "predictions": [[...], ...],
                       "optimizer_class": "Adam",                     (optional, like the three below)
                       "optimizer_weight_names": ["Adam/iter:0", "Adam/dense/kernel/m:0", ...],
                       "optimizer_weights": [[2], [flat values], ...],  (legacy get_weights() order, flattened)
                       "learning_rate": 0.01}                          (optional: checked against Keras 3)

Every check prints PASS, FAIL (with the difference) or SKIP (with the reason); the exit status is 1 if any check
failed, else 0. Predictions and optimizer values must agree within |got - want| <= 1e-6 + 1e-6 * |want|.

What is checked
- Layout (h5py, low level): each file is compared, object by object and attribute by attribute (HDF5 string
  type: vlen or fixed, charset, scalar or simple dataspace; dataset dtype, shape, layout, filters), with the
  file that tf_keras / Keras 3 itself writes for the same model: the model is loaded and saved again into a
  temporary folder. The tf_keras `/optimizer_weights` subtree is compared with `expected.json`'s names instead,
  because tf_keras renames the optimizer weights on loading (it drops the "Adam/" prefix).
- tf_keras: `load_model("model.h5")` predicts `predictions`; it restored the optimizer of class `optimizer_class`
  with exactly `optimizer_weights` (tf_keras creates the slots with `_create_all_weights` and calls
  `set_weights` *positionally*; a mismatch there is only a logged warning, which this check turns into a FAIL;
  the restored weights' names must equal `optimizer_weight_names` without the "<Optimizer>/" prefix, which
  shows that the file's order is the order tf_keras creates them in); and a model built from `model.h5`'s
  `model_config` with `load_weights("weights.h5")` predicts the same.
- Keras 3: `keras.saving.load_model("model.keras")` predicts `predictions`; its optimizer class and learning
  rate; iterations and (for Adam and SGD) each slot equal the legacy `optimizer_weights`; a model built from
  `config.json` with `load_weights("model.weights.h5")` predicts the same.

Self-test (make a DIR from the golden fixtures, then run the checker on it; all checks should PASS):
    /work/venv-tf/bin/python scripts/check_keras_files.py --from-fixture tfkeras_adam /tmp/ck_tf
    /work/venv-tf/bin/python scripts/check_keras_files.py /tmp/ck_tf
(fixtures: tfkeras_adam, tfkeras_sgd_momentum, tfkeras_embedding, tfkeras_dropout_nocompile, keras3_adam,
keras3_dropout_nocompile; a tf_keras fixture fills model.h5/weights.h5, a keras3 one model.keras/model.weights.h5.)
"""

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "golden"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras_file_layout as kfl  # noqa: E402

FIXTURE_DIR = os.path.join(HERE, "..", "Tests", "Fixtures", "keras_files")
ATOL = RTOL = 1e-6

# Legacy (tf_keras) slot name -> Keras 3 slot name, for the optimizers whose Keras 3 state maps one to one.
K3_SLOTS = {"Adam": {"m": "momentum", "v": "velocity", "vhat": "velocity_hat"}, "SGD": {"momentum": "momentum"}}

_failures = []


def report(status, name, detail=""):
    print(f"{status:4}  {name}" + (f": {detail}" if detail else ""))
    if status == "FAIL":
        _failures.append(name)


def check(name, ok, detail=""):
    report("PASS" if ok else "FAIL", name, detail)
    return ok


def close_enough(got, want):
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return False, f"{got.size} values, expected {want.size}"
    err = np.abs(got - want)
    bad = err > ATOL + RTOL * np.abs(want)
    worst = float(err.max()) if err.size else 0.0
    if bad.any():
        i = int(np.argmax(bad))
        return False, f"{int(bad.sum())} of {got.size} values off (first at flat index {i}: got {float(got[i])!r}, " \
                      f"expected {float(want[i])!r}); max |diff| {worst:.3g}"
    return True, f"{got.size} values, max |diff| {worst:.3g}"


def guarded(name, fn):
    """Run one check body; an exception is a FAIL of that check, not a crash of the checker."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - every error of a check is reported as its FAIL
        report("FAIL", name, f"{type(e).__name__}: {e}")
        return None


class WarningCapture(logging.Handler):
    """Collects TensorFlow/tf_keras log warnings (tf_logging uses the Python logger "tensorflow")."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def compare_layout(name, ref, got, **kw):
    diffs, notes = kfl.compare_h5(ref, got, **kw)
    for n in notes:
        print(f"      note: {n}")
    check(name, not diffs, "; ".join(diffs[:12]) + (f" ... ({len(diffs)} differences)" if len(diffs) > 12 else ""))


# --------------------------------------------------------------------------
# tf_keras
# --------------------------------------------------------------------------

def split_optimizer_subtree(layout):
    keep = {"file": layout["file"], "objects": []}
    opt = []
    for o in layout["objects"]:
        (opt if o["path"] == "/optimizer_weights" or o["path"].startswith("/optimizer_weights/") else
         keep["objects"]).append(o)
    return keep, opt


def check_optimizer_subtree(got_objects, ref_objects, expected, optimizer_name):
    """/optimizer_weights of Descent's file against expected names and against the types tf_keras writes."""
    name = "model.h5 layout: /optimizer_weights"
    got = {o["path"]: o for o in got_objects}
    ref = {o["path"]: o for o in ref_objects}
    want_names = expected.get("optimizer_weight_names")
    if not ref_objects:
        return check(name, not got_objects, "tf_keras writes no /optimizer_weights for this model" +
                     (", but model.h5 has one" if got_objects else ""))
    if not got_objects:
        return check(name, False, "missing /optimizer_weights (tf_keras writes it for a compiled, trained model)")
    diffs = []
    root_g, root_r = got.get("/optimizer_weights"), ref["/optimizer_weights"]
    ga = {a["name"]: a for a in root_g["attributes"]}
    ra = {a["name"]: a for a in root_r["attributes"]}
    if set(ga) != set(ra):
        diffs.append(f"/optimizer_weights attributes {sorted(ga)}, expected {sorted(ra)}")
    elif ga["weight_names"]["type"] != ra["weight_names"]["type"] or ga["weight_names"]["space"] != "simple":
        diffs.append(f"@weight_names is {kfl._type_text(ga['weight_names']['type'])} {ga['weight_names']['space']}, "
                     f"expected {kfl._type_text(ra['weight_names']['type'])} simple")
    names = ga.get("weight_names", {}).get("value") or []
    ref_names = ra["weight_names"]["value"]
    if want_names is not None and names != want_names:
        diffs.append(f"@weight_names {names}, expected.json says {want_names}")
    if optimizer_name and any(not n.startswith(optimizer_name + "/") for n in names):
        diffs.append(f"@weight_names {names}: a trained tf_keras model names every optimizer weight "
                     f"'{optimizer_name}/...' (the optimizer's name in training_config)")
    if len(names) != len(ref_names):
        diffs.append(f"{len(names)} optimizer weights, tf_keras writes {len(ref_names)} for this model")
    expected_paths = {"/optimizer_weights"}
    for i, n in enumerate(names):
        path = "/optimizer_weights/" + n
        parts = path.split("/")
        expected_paths.update("/".join(parts[:k]) for k in range(2, len(parts)))
        expected_paths.add(path)
        d = got.get(path)
        if d is None or d["kind"] != "dataset":
            diffs.append(f"no dataset {path}")
            continue
        if i < len(ref_names):
            r = ref["/optimizer_weights/" + ref_names[i]]
            for k in ("type", "space", "shape", "layout", "filters"):
                if d[k] != r[k]:
                    diffs.append(f"{path}: {k} {d[k]}, tf_keras writes {r[k]} (for {ref_names[i]})")
        if d["attributes"]:
            diffs.append(f"{path} has attributes {[a['name'] for a in d['attributes']]}")
    for p, o in got.items():
        if p not in expected_paths:
            diffs.append(f"unexpected {o['kind']} {p}")
        elif o["kind"] == "group" and p != "/optimizer_weights" and o["attributes"]:
            diffs.append(f"group {p} has attributes {[a['name'] for a in o['attributes']]} (tf_keras writes none)")
    return check(name, not diffs, "; ".join(diffs[:12]))


def check_tf_keras(d, expected, tmp):
    model_path = os.path.join(d, "model.h5")
    weights_path = os.path.join(d, "weights.h5")
    if not os.path.exists(model_path):
        report("SKIP", "tf_keras checks", "no model.h5")
        if os.path.exists(weights_path):
            report("SKIP", "weights.h5", "needs model.h5 for the architecture")
        return
    import tf_keras  # noqa: F401 (imported late: slow)
    import h5py

    x = np.asarray(expected["x"], dtype=expected.get("x_dtype", "float32"))
    capture = WarningCapture()
    logging.getLogger("tensorflow").addHandler(capture)
    try:
        model = guarded("tf_keras load_model(model.h5)", lambda: tf_keras.models.load_model(model_path))
    finally:
        logging.getLogger("tensorflow").removeHandler(capture)
    if model is None:
        return
    report("PASS", "tf_keras load_model(model.h5)", "; ".join(capture.messages) if capture.messages else "")

    # Layout: what tf_keras writes for the loaded model.
    ref_path = os.path.join(tmp, "ref_model.h5")
    ref_weights = os.path.join(tmp, "ref_weights.h5")
    model.save(ref_path, save_format="h5")
    model.save_weights(ref_weights)
    got_layout, got_opt = split_optimizer_subtree(kfl.describe_h5(model_path))
    ref_layout, ref_opt = split_optimizer_subtree(kfl.describe_h5(ref_path))
    compare_layout("model.h5 layout (everything but /optimizer_weights) vs tf_keras' own save", ref_layout, got_layout)
    check_optimizer_subtree(got_opt, ref_opt, expected,
                            getattr(model.optimizer, "_name", None) if model.optimizer is not None else None)

    def predictions():
        ok, detail = close_enough(model.predict(x, verbose=0), expected["predictions"])
        check("tf_keras model.h5 predictions", ok, detail)
    guarded("tf_keras model.h5 predictions", predictions)

    def optimizer():
        want_class = expected.get("optimizer_class")
        opt = model.optimizer
        if want_class is None:
            return check("tf_keras optimizer", opt is None, "expected.json has no optimizer_class" +
                         (f", but model.h5 restores {type(opt).__name__}" if opt is not None else ""))
        if not check("tf_keras optimizer class", opt is not None and type(opt).__name__ == want_class,
                     f"got {type(opt).__name__ if opt is not None else None}, expected {want_class}"):
            return
        problems = [m for m in capture.messages if "optimizer" in m.lower()]
        check("tf_keras restored the optimizer state (no warning)", not problems, "; ".join(problems))
        names = [w.name for w in opt.weights]
        want_names = expected.get("optimizer_weight_names")
        if want_names is not None:
            prefix = opt._name + "/"
            stripped = [n[len(prefix):] if n.startswith(prefix) else n for n in want_names]
            check("tf_keras optimizer weight names (restored order)", names == stripped,
                  f"{len(names)} names" if names == stripped else
                  f"tf_keras created {names}; expected.json (without '{prefix}') {stripped}")
        if "optimizer_weights" in expected:
            values = opt.get_weights()
            want = expected["optimizer_weights"]
            if not check("tf_keras optimizer weight count", len(values) == len(want),
                         f"{len(values)} restored, {len(want)} expected"):
                return
            bad = []
            for n, v, w in zip(names, values, want):
                ok, detail = close_enough(v, w)
                if not ok:
                    bad.append(f"{n}: {detail}")
            check("tf_keras optimizer weight values", not bad, "; ".join(bad) or f"{len(values)} weights")
    guarded("tf_keras optimizer", optimizer)

    if not os.path.exists(weights_path):
        report("SKIP", "weights.h5 checks", "no weights.h5")
        return
    compare_layout("weights.h5 layout vs tf_keras' own save_weights", kfl.describe_h5(ref_weights),
                   kfl.describe_h5(weights_path))

    def weights_predictions():
        with h5py.File(model_path, "r") as f:
            cfg = f.attrs["model_config"]
        rebuilt = tf_keras.models.model_from_json(cfg.decode() if isinstance(cfg, bytes) else cfg)
        rebuilt.load_weights(weights_path)
        ok, detail = close_enough(rebuilt.predict(x, verbose=0), expected["predictions"])
        check("tf_keras model_config + load_weights(weights.h5) predictions", ok, detail)
    guarded("tf_keras model_config + load_weights(weights.h5) predictions", weights_predictions)


# --------------------------------------------------------------------------
# Keras 3
# --------------------------------------------------------------------------

def drop_shared_ids(obj):
    if isinstance(obj, dict):
        return {k: drop_shared_ids(v) for k, v in obj.items() if k != "shared_object_id"}
    if isinstance(obj, list):
        return [drop_shared_ids(v) for v in obj]
    return obj


def json_diff(a, b, path="$"):
    """First few paths where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: missing" for k in a.keys() - b.keys()]
        out += [f"{path}.{k}: unexpected" for k in b.keys() - a.keys()]
        for k in a.keys() & b.keys():
            out += json_diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [e for i, (u, v) in enumerate(zip(a, b)) for e in json_diff(u, v, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path}: expected {json.dumps(a)}, got {json.dumps(b)}"]


def check_zip(ref_zip, got_zip):
    diffs = []
    r, g = kfl.describe_zip(ref_zip), kfl.describe_zip(got_zip)
    rn, gn = [m["name"] for m in r["members"]], [m["name"] for m in g["members"]]
    if rn != gn:
        diffs.append(f"members {gn}, Keras writes {rn} (in this order)")
    for m in g["members"]:
        if m["compress_type"] != "STORED (0)":
            diffs.append(f"{m['name']} is {m['compress_type']}, Keras stores members uncompressed")
    meta = json.loads(g["json"].get("metadata.json", "{}"))
    ref_meta = json.loads(r["json"]["metadata.json"])
    # Descent marks a legacy optimizer's family (`descent_optimizer_family`, read back by Descent only;
    # Keras ignores unknown metadata keys): its own keys are not Keras' and are left out of the comparison.
    keras_keys = [k for k in meta.keys() if not k.startswith("descent_")]
    if keras_keys != list(ref_meta.keys()):
        diffs.append(f"metadata.json keys {list(meta)}, expected {list(ref_meta)} (besides descent_* keys)")
    if meta.get("keras_version") != ref_meta["keras_version"]:
        diffs.append(f"metadata.json keras_version {meta.get('keras_version')!r}, expected {ref_meta['keras_version']!r}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d", str(meta.get("date_saved"))):
        diffs.append(f"metadata.json date_saved {meta.get('date_saved')!r} is not YYYY-MM-DD@HH:MM:SS")
    check("model.keras zip members, order, compression, metadata.json", not diffs, "; ".join(diffs))
    if "config.json" in g["json"]:
        cd = json_diff(drop_shared_ids(json.loads(r["json"]["config.json"])),
                       drop_shared_ids(json.loads(g["json"]["config.json"])))
        check("model.keras config.json vs Keras' own save (shared_object_id ignored)", not cd,
              "; ".join(cd[:10]) + (f" ... ({len(cd)} differences)" if len(cd) > 10 else ""))
    if g["weights"] is not None:
        compare_layout("model.keras model.weights.h5 layout vs Keras' own save", r["weights"], g["weights"])


def check_keras3(d, expected, tmp):
    model_path = os.path.join(d, "model.keras")
    weights_path = os.path.join(d, "model.weights.h5")
    if not os.path.exists(model_path):
        report("SKIP", "Keras 3 checks", "no model.keras")
        if os.path.exists(weights_path):
            report("SKIP", "model.weights.h5", "needs model.keras for the architecture")
        return
    import keras

    x = np.asarray(expected["x"], dtype=expected.get("x_dtype", "float32"))
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = guarded("keras.saving.load_model(model.keras)", lambda: keras.saving.load_model(model_path))
    if model is None:
        return
    # Keras 3 reports state it could not restore (e.g. "Skipping variable loading for optimizer ...") only as
    # a Python warning; every such warning is a FAIL here.
    load_warnings = [str(w.message) for w in caught if "load" in str(w.message).lower()]
    check("keras.saving.load_model(model.keras)", not load_warnings, "; ".join(load_warnings))
    ref_path = os.path.join(tmp, "ref.keras")
    ref_weights = os.path.join(tmp, "ref.weights.h5")
    model.save(ref_path)
    model.save_weights(ref_weights)
    guarded("model.keras layout", lambda: check_zip(ref_path, model_path))

    def predictions():
        ok, detail = close_enough(model.predict(x, verbose=0), expected["predictions"])
        check("Keras 3 model.keras predictions", ok, detail)
    guarded("Keras 3 model.keras predictions", predictions)

    def optimizer():
        opt = getattr(model, "optimizer", None)  # an uncompiled Keras 3 model has no attribute at all
        want_class = expected.get("optimizer_class")
        if want_class is None or opt is None:
            return check("Keras 3 optimizer", (opt is None) == (want_class is None),
                         f"model.keras has {type(opt).__name__ if opt else 'no optimizer'}, "
                         f"expected.json optimizer_class {want_class}")
        check("Keras 3 optimizer class", type(opt).__name__ == want_class,
              f"got {type(opt).__name__}, expected {want_class}")
        lr = float(np.asarray(opt.learning_rate))
        if "learning_rate" in expected:
            ok, detail = close_enough(lr, np.float32(expected["learning_rate"]))
            check("Keras 3 learning_rate", ok, f"{lr!r}; {detail}")
        else:
            report("PASS", "Keras 3 learning_rate", f"{lr!r} (expected.json has no learning_rate to compare)")
        names, values = expected.get("optimizer_weight_names"), expected.get("optimizer_weights")
        if names is None or values is None:
            return report("SKIP", "Keras 3 optimizer state", "expected.json has no optimizer_weights")
        legacy = dict(zip(names, values))
        prefix = want_class + "/"
        it = legacy.get(prefix + "iter:0")
        if it is not None:
            check("Keras 3 iterations", int(np.asarray(opt.iterations)) == int(np.asarray(it).reshape(-1)[0]),
                  f"got {int(np.asarray(opt.iterations))}, expected {it}")
        slots = K3_SLOTS.get(want_class)
        if slots is None:
            return report("SKIP", "Keras 3 optimizer slots", f"no legacy-to-Keras-3 slot map for {want_class}")
        k3 = {v.path: v for v in opt.variables}
        bad, compared = [], 0
        for n, w in legacy.items():
            if not n.startswith(prefix) or n == prefix + "iter:0":
                continue
            var_path, _, slot = n[len(prefix):].removesuffix(":0").rpartition("/")
            if slot not in slots:
                bad.append(f"{n}: unknown {want_class} slot {slot!r}")
                continue
            suffix = f"{var_path.replace('/', '_')}_{slots[slot]}"
            hits = [v for p, v in k3.items() if p == f"{opt.name}/{suffix}" or p.endswith("_" + suffix)]
            if len(hits) != 1:
                bad.append(f"{n}: {len(hits)} Keras 3 variables named like {suffix} in {sorted(k3)}")
                continue
            ok, detail = close_enough(hits[0].numpy(), w)
            compared += 1
            if not ok:
                bad.append(f"{n} vs {hits[0].path}: {detail}")
        check("Keras 3 optimizer slots equal the legacy optimizer_weights", not bad,
              "; ".join(bad[:6]) or f"{compared} slots")
    guarded("Keras 3 optimizer", optimizer)

    if not os.path.exists(weights_path):
        report("SKIP", "model.weights.h5 checks", "no model.weights.h5")
        return
    guarded("model.weights.h5 layout", lambda: compare_layout(
        "model.weights.h5 layout vs Keras' own save_weights", kfl.describe_h5(ref_weights),
        kfl.describe_h5(weights_path)))

    def weights_predictions():
        with zipfile.ZipFile(model_path) as z:
            rebuilt = keras.models.model_from_json(z.read("config.json").decode())
        rebuilt.load_weights(weights_path)
        ok, detail = close_enough(rebuilt.predict(x, verbose=0), expected["predictions"])
        check("Keras 3 config.json + load_weights(model.weights.h5) predictions", ok, detail)
    guarded("Keras 3 config.json + load_weights(model.weights.h5) predictions", weights_predictions)


# --------------------------------------------------------------------------

def from_fixture(case, out):
    """Fill `out` with a golden fixture's files under the checker's names and an expected.json from its numbers."""
    with open(os.path.join(FIXTURE_DIR, case + ".json")) as f:
        fx = json.load(f)
    os.makedirs(out, exist_ok=True)
    names = (("model.h5", "weights.h5") if case.startswith("tfkeras") else ("model.keras", "model.weights.h5"))
    for target, role in zip(names, ("model", "weights")):
        shutil.copyfile(os.path.join(FIXTURE_DIR, fx["files"][role]), os.path.join(out, target))
    expected = {"x": fx["x"], "x_dtype": fx["x_dtype"], "predictions": fx["predictions"]}
    if "optimizer_class" in fx:
        expected["optimizer_class"] = fx["optimizer_class"]
        if case.startswith("tfkeras"):
            expected["optimizer_weight_names"] = fx["optimizer_weight_names"]
            expected["optimizer_weights"] = fx["optimizer_weights"]
        else:
            # Keras 3 state written in the legacy form Descent uses: iter, then every m, then every v.
            cls = fx["optimizer_class"]
            k3 = dict(zip(fx["optimizer_weight_names_after_load"], fx["optimizer_weights"]))
            var_names = [w["name"] for w in fx["weights"]]
            legacy_slots = {v: k for k, v in K3_SLOTS[cls].items() if k != "vhat"}
            names, values = [f"{cls}/iter:0"], [k3[f"{cls.lower()}/iteration"]]
            for k3_slot, slot in legacy_slots.items():
                for v in var_names:
                    names.append(f"{cls}/{v}/{slot}:0")
                    values.append(k3[f"{cls.lower()}/{v.replace('/', '_')}_{k3_slot}"])
            expected.update(optimizer_weight_names=names, optimizer_weights=values)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"wrote {out}: {sorted(os.listdir(out))}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="folder with Descent's files and expected.json")
    ap.add_argument("--from-fixture", nargs=2, metavar=("CASE", "OUT"),
                    help="make a test folder OUT from the golden fixture CASE and exit")
    args = ap.parse_args()
    if args.from_fixture:
        return from_fixture(*args.from_fixture)
    if not args.dir:
        ap.error("DIR is required")
    exp_path = os.path.join(args.dir, "expected.json")
    if not os.path.exists(exp_path):
        print(f"FAIL  {exp_path} does not exist")
        sys.exit(1)
    with open(exp_path) as f:
        expected = json.load(f)
    for key in ("x", "predictions"):
        if key not in expected:
            print(f"FAIL  expected.json has no {key!r}")
            sys.exit(1)
    import tensorflow as tf
    tf.get_logger().setLevel("WARNING")
    import warnings
    warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
    with tempfile.TemporaryDirectory() as tmp:
        check_tf_keras(args.dir, expected, tmp)
        check_keras3(args.dir, expected, tmp)
    print(f"{'FAILED' if _failures else 'OK'}: {len(_failures)} failed check(s)" +
          (": " + ", ".join(_failures) if _failures else ""))
    sys.exit(1 if _failures else 0)


if __name__ == "__main__":
    main()
