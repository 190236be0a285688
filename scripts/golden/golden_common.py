"""Shared helpers for the golden-fixture generators (JSON safety and writing).

Imported by generate_optimizers.py and generate_configs.py. Importing this
module also quiets TensorFlow's C++ logging; it must be imported before
tensorflow.
"""

import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "Tests", "Fixtures")


def json_safe(obj):
    """Return `obj` with numpy scalars turned into Python values via .item(),
    numpy arrays into nested lists, and tuples into lists.

    tf_keras' serialize() already does the numpy-scalar conversion itself
    (serialization_lib.serialize_keras_object calls .item()), so for
    serialize() output this is expected to be the identity up to tuples.
    """
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite float in fixture: {obj}")
    return obj


def _is_scalar(o):
    return o is None or isinstance(o, (bool, int, float, str))


# Whether NaN and ±Infinity may be written (as JSON's NaN / Infinity extension, which Descent's parser
# accepts); set only by write_json(..., allow_nonfinite=True) for the fixtures with non-finite data.
_ALLOW_NAN = False


def _compact(o):
    return json.dumps(o, allow_nan=_ALLOW_NAN, separators=(",", ":"))


def _is_flat(o):
    """Scalars, lists of scalars, lists of lists of scalars, or dicts of those,
    are written on one line."""
    if _is_scalar(o):
        return True
    if isinstance(o, list):
        return all(_is_scalar(x) or (isinstance(x, list) and all(_is_scalar(y) for y in x)) for x in o)
    return False


def pretty(o, ind=0):
    """Readable JSON: containers indented, numeric arrays on one line.

    Parsing the output with json.loads gives exactly `o` (key order kept).
    """
    pad = "  " * (ind + 1)
    end = "  " * ind
    if isinstance(o, dict):
        if not o:
            return "{}"
        if all(_is_scalar(v) for v in o.values()) and len(o) <= 12:
            return json.dumps(o, allow_nan=_ALLOW_NAN)
        if all(_is_flat(v) and not isinstance(v, dict) for v in o.values()) and any(
                isinstance(v, list) for v in o.values()) and len(o) <= 4:
            return "{" + ", ".join(json.dumps(k) + ": " + _compact(v) for k, v in o.items()) + "}"
        items = [pad + json.dumps(k) + ": " + pretty(v, ind + 1) for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(o, list):
        if _is_flat(o):
            return _compact(o)
        items = [pad + pretty(v, ind + 1) for v in o]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return json.dumps(o, allow_nan=_ALLOW_NAN)


def _same(a, b):
    """Equality in which NaN equals NaN (for the round-trip check of non-finite fixtures)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def write_json(path, obj, allow_nonfinite=False):
    global _ALLOW_NAN
    _ALLOW_NAN = allow_nonfinite
    try:
        text = pretty(obj) + "\n"
    finally:
        _ALLOW_NAN = False
    assert _same(json.loads(text), obj), path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return len(text.encode())
