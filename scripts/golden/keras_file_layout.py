"""Describe the exact HDF5 / zip layout of Keras files, render it as Markdown, and compare two layouts.

Shared by generate_keras_files.py (writes Tests/Fixtures/keras_files/LAYOUTS.md) and
scripts/check_keras_files.py (compares a Descent-written file with the one tf_keras / Keras 3 writes
for the same model). Needs only h5py and numpy.

A layout is a plain dict:
  {"file": {superblock version, userblock, libver, sizes}, "objects": [{"path", "kind", ...}, ...]}
Each object lists its attributes in the file's native (storage) order with the HDF5 type details read
through the low-level API (h5py.h5a / get_type): string or not, variable-length or fixed, charset,
padding, scalar or simple dataspace, and the value.
"""

import io
import json
import zipfile

import h5py
import numpy as np

_CSET = {h5py.h5t.CSET_ASCII: "ASCII", h5py.h5t.CSET_UTF8: "UTF-8"}
_STRPAD = {h5py.h5t.STR_NULLTERM: "NULLTERM", h5py.h5t.STR_NULLPAD: "NULLPAD", h5py.h5t.STR_SPACEPAD: "SPACEPAD"}
_LAYOUT = {h5py.h5d.COMPACT: "compact", h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.CHUNKED: "chunked"}
_ORDER = {h5py.h5t.ORDER_LE: "LE", h5py.h5t.ORDER_BE: "BE", h5py.h5t.ORDER_NONE: "none"}
_ZIP_METHOD = {zipfile.ZIP_STORED: "STORED (0)", zipfile.ZIP_DEFLATED: "DEFLATED (8)"}


def _type_info(tid):
    """A dict describing an HDF5 datatype (attribute or dataset)."""
    if isinstance(tid, h5py.h5t.TypeStringID):
        return {"class": "string", "vlen": bool(tid.is_variable_str()), "cset": _CSET.get(tid.get_cset(), tid.get_cset()),
                "strpad": _STRPAD.get(tid.get_strpad(), tid.get_strpad()),
                "size": int(tid.get_size())}
    if isinstance(tid, h5py.h5t.TypeIntegerID):
        return {"class": "integer", "size": int(tid.get_size()), "signed": tid.get_sign() == h5py.h5t.SGN_2,
                "order": _ORDER.get(tid.get_order(), tid.get_order())}
    if isinstance(tid, h5py.h5t.TypeFloatID):
        return {"class": "float", "size": int(tid.get_size()), "order": _ORDER.get(tid.get_order(), tid.get_order())}
    return {"class": type(tid).__name__}


def _space_info(sid):
    kind = sid.get_simple_extent_type()
    if kind == h5py.h5s.SCALAR:
        return "scalar", []
    if kind == h5py.h5s.NULL:
        return "null", []
    return "simple", [int(n) for n in sid.shape]


def _py(v):
    """A JSON-friendly value: bytes decoded, numpy arrays to lists."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        return [_py(x) for x in v.tolist()] if v.dtype != object else [_py(x) for x in v]
    if isinstance(v, list):
        return [_py(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _attributes(obj):
    names = []
    h5py.h5a.iterate(obj.id, lambda n: names.append(n) and None, index_type=h5py.h5.INDEX_NAME,
                     order=h5py.h5.ITER_NATIVE)
    out = []
    for name in names:
        aid = h5py.h5a.open(obj.id, name)
        space, shape = _space_info(aid.get_space())
        out.append({"name": name.decode("utf-8"), "type": _type_info(aid.get_type()), "space": space, "shape": shape,
                    "value": _py(obj.attrs[name.decode("utf-8")])})
    return out


_SIGNATURES = (b"TREE", b"HEAP", b"SNOD", b"GCOL", b"OHDR", b"OCHK", b"FRHP", b"FHDB", b"BTHD", b"BTLF", b"FSHD")


def describe_h5(source):
    """Layout of an HDF5 file given by path or bytes."""
    raw = bytes(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb").read()
    f = h5py.File(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source, "r")
    with f:
        fcpl = f.id.get_create_plist()
        sb, freelist, stab, shhdr = fcpl.get_version()
        file_info = {"superblock_version": sb, "freelist_version": freelist, "symbol_table_version": stab,
                     "shared_header_version": shhdr, "sizeof_offsets_lengths": list(fcpl.get_sizes()),
                     "userblock": int(fcpl.get_userblock()), "libver_bounds": list(f.libver),
                     "superblock_version_byte": raw[8],
                     # Counts of on-disk structure signatures: v1 B-tree nodes (TREE), local heaps (HEAP),
                     # symbol-table nodes (SNOD), global heap collections (GCOL: where variable-length strings
                     # live), v2 object headers (OHDR), fractal heaps / v2 B-trees (dense storage).
                     "signatures": {sig.decode(): raw.count(sig) for sig in _SIGNATURES}}
        objects = []

        def visit(name, obj):
            entry = {"path": "/" + name if name else "/"}
            if isinstance(obj, h5py.Group):
                entry["kind"] = "group"
                entry["members"] = list(obj.keys())  # name order; symbol-table groups store links sorted by name
                gcpl = obj.id.get_create_plist()
                entry["link_creation_order"] = int(gcpl.get_link_creation_order())
                entry["attr_creation_order"] = int(gcpl.get_attr_creation_order())
            else:
                entry["kind"] = "dataset"
                space, shape = _space_info(obj.id.get_space())
                dcpl = obj.id.get_create_plist()
                entry.update({"type": _type_info(obj.id.get_type()), "numpy_dtype": obj.dtype.str,
                              "space": space, "shape": shape, "layout": _LAYOUT.get(dcpl.get_layout()),
                              "filters": dcpl.get_nfilters(), "attr_creation_order": int(dcpl.get_attr_creation_order())})
                entry["value_sample"] = _py(obj[()]) if obj.size <= 4 else None
            entry["attributes"] = _attributes(obj)
            objects.append(entry)

        visit("", f)
        f.visititems(visit)
    return {"file": file_info, "objects": objects}


def describe_zip(path):
    """Zip member list of a .keras file, in stored order, plus the layout of its model.weights.h5."""
    with zipfile.ZipFile(path) as z:
        members = [{"name": i.filename, "compress_type": _ZIP_METHOD.get(i.compress_type, i.compress_type),
                    "file_size": i.file_size, "compress_size": i.compress_size, "date_time": list(i.date_time),
                    "flag_bits": i.flag_bits, "create_system": i.create_system, "create_version": i.create_version,
                    "extract_version": i.extract_version, "external_attr": oct(i.external_attr >> 16),
                    "extra": i.extra.hex(), "comment": i.comment.decode(), "header_offset": i.header_offset}
                   for i in z.infolist()]
        texts = {n: z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".json")}
        weights = describe_h5(z.read("model.weights.h5")) if "model.weights.h5" in z.namelist() else None
        return {"members": members, "json": texts, "weights": weights, "archive_comment": z.comment.decode()}


def _type_text(t):
    if t["class"] == "string":
        return f"string {'vlen' if t['vlen'] else 'fixed'} {t['cset']} {t['strpad']}" + (
            "" if t["vlen"] else f" size {t['size']}")
    if t["class"] == "integer":
        return f"{'int' if t['signed'] else 'uint'}{8 * t['size']} {t['order']}"
    if t["class"] == "float":
        return f"float{8 * t['size']} {t['order']}"
    return t["class"]


def _value_text(v, limit=160):
    s = json.dumps(v)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


def render_h5(layout, long_values=()):
    """Markdown lines for one HDF5 layout. Attribute values in `long_values` are shown in full."""
    fi = layout["file"]
    lines = [f"- file: superblock v{fi['superblock_version']} (freelist v{fi['freelist_version']}, symbol table "
             f"v{fi['symbol_table_version']}, shared header v{fi['shared_header_version']}), offsets/lengths "
             f"{fi['sizeof_offsets_lengths'][0]}/{fi['sizeof_offsets_lengths'][1]} bytes, userblock "
             f"{fi['userblock']}, h5py libver bounds {tuple(fi['libver_bounds'])}; on-disk signatures "
             + ", ".join(f"{k} x{v}" for k, v in fi["signatures"].items() if v) + "; creation-order tracking "
             f"(links/attributes) flags on every object: "
             f"{sorted({(o.get('link_creation_order', 0), o['attr_creation_order']) for o in layout['objects']})}", ""]
    lines.append("| path | kind | type / dtype | space | attributes (native order): name — HDF5 type, space, value |")
    lines.append("|---|---|---|---|---|")
    for o in layout["objects"]:
        attrs = "<br>".join(
            f"`{a['name']}` — {_type_text(a['type'])}, {a['space']}{a['shape'] if a['space'] == 'simple' else ''}, "
            + ("(full text: the case JSON)" if a["name"] in long_values else "`" + _value_text(a["value"]).replace("|", "\\|") + "`")
            for a in o["attributes"]) or "—"
        if o["kind"] == "group":
            lines.append(f"| `{o['path']}` | group | — | — | {attrs} |")
        else:
            val = "" if o["value_sample"] is None else f" value `{_value_text(o['value_sample'], 60)}`"
            lines.append(f"| `{o['path']}` | dataset ({o['layout']}, {o['filters']} filters) | "
                         f"{_type_text(o['type'])} (`{o['numpy_dtype']}`){val} | {o['space']} {o['shape']} | {attrs} |")
    return lines


def _file_kind(fi):
    """The file properties a writer must reproduce: the superblock fields, plus whether any version-2 object
    header or dense (fractal-heap / v2 B-tree) storage is present. (The signature counts themselves depend on the
    number of groups.)"""
    sig = fi["signatures"]
    out = {k: v for k, v in fi.items() if k != "signatures"}
    out["v2_object_headers"] = sig.get("OHDR", 0) + sig.get("OCHK", 0) > 0
    out["dense_storage"] = sum(sig.get(k, 0) for k in ("FRHP", "FHDB", "BTHD", "BTLF", "FSHD")) > 0
    out["symbol_table_groups"] = sig.get("TREE", 0) > 0 and sig.get("HEAP", 0) > 0
    return out


def _attr_key(a):
    return (a["name"], json.dumps(a["type"], sort_keys=True), a["space"], tuple(a["shape"]))


def compare_h5(ref, got, json_attrs=("model_config", "training_config"), ignore_values=()):
    """Differences (list of strings) between two HDF5 layouts: paths, kinds, dataset types/shapes/layout,
    attribute names (and native order), HDF5 attribute types, dataspaces and values. Attributes named in
    `json_attrs` are compared as parsed JSON (and a byte difference is reported separately as a note);
    attribute names in `ignore_values` are compared by type only."""
    diffs, notes = [], []
    rf, gf = _file_kind(ref["file"]), _file_kind(got["file"])
    if rf != gf:
        diffs.append(f"file properties differ: expected {rf}, got {gf}")
    rp = {o["path"]: o for o in ref["objects"]}
    gp = {o["path"]: o for o in got["objects"]}
    for p in rp.keys() - gp.keys():
        diffs.append(f"missing {rp[p]['kind']} {p}")
    for p in gp.keys() - rp.keys():
        diffs.append(f"unexpected {gp[p]['kind']} {p}")
    for p in sorted(rp.keys() & gp.keys()):
        r, g = rp[p], gp[p]
        if r["kind"] != g["kind"]:
            diffs.append(f"{p}: expected a {r['kind']}, got a {g['kind']}")
            continue
        if r["kind"] == "dataset":
            for k in ("type", "space", "shape", "layout", "filters"):
                if r[k] != g[k]:
                    diffs.append(f"{p}: dataset {k} expected {r[k]}, got {g[k]}")
        rn = [a["name"] for a in r["attributes"]]
        gn = [a["name"] for a in g["attributes"]]
        if set(rn) != set(gn):
            diffs.append(f"{p}: attributes expected {rn}, got {gn}")
        elif rn != gn:
            notes.append(f"{p}: attribute storage order expected {rn}, got {gn}")
        ga = {a["name"]: a for a in g["attributes"]}
        for a in r["attributes"]:
            b = ga.get(a["name"])
            if b is None:
                continue
            if _attr_key(a) != _attr_key(b):
                diffs.append(f"{p} @{a['name']}: expected {_type_text(a['type'])} {a['space']}{a['shape']}, "
                             f"got {_type_text(b['type'])} {b['space']}{b['shape']}")
            if a["name"] in ignore_values:
                continue
            if a["name"] in json_attrs:
                try:
                    same = json.loads(a["value"]) == json.loads(b["value"])
                except (TypeError, ValueError) as e:
                    diffs.append(f"{p} @{a['name']}: not JSON text ({e})")
                    continue
                if not same:
                    diffs.append(f"{p} @{a['name']}: JSON differs: expected {_value_text(a['value'], 400)}, "
                                 f"got {_value_text(b['value'], 400)}")
                elif a["value"] != b["value"]:
                    notes.append(f"{p} @{a['name']}: same JSON, different text")
            elif a["value"] != b["value"]:
                diffs.append(f"{p} @{a['name']}: value expected {_value_text(a['value'])}, got {_value_text(b['value'])}")
    return diffs, notes
