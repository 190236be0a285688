"""Checks Descent's trimmed TensorBoard protos against tensorboard's own descriptors.

Every message, field and enum value in `Sources/DescentTensorBoard/Protos/*.proto` must exist in
tensorboard 2.21.0's `tensorboard.compat.proto` descriptors with the same full name, number, type, label,
message/enum type, packing and oneof, so that the bytes Descent writes are the bytes TensorBoard reads.
Reserved numbers must be numbers the original uses (fields left out, not invented).

Usage (run by scripts/generate-tensorboard-protos.sh): python check_tensorboard_protos.py DESCRIPTOR_SET
where DESCRIPTOR_SET is `protoc --descriptor_set_out` of the trimmed protos. Needs `tensorboard==2.21.0`.
"""

import sys

from google.protobuf import descriptor_pb2
from tensorboard.compat.proto import event_pb2

POOL = event_pb2.DESCRIPTOR.pool  # holds event.proto and everything it imports


def packed(field):
    return field.options.packed if field.options.HasField("packed") else None


def check_message(msg, prefix, errors):
    full = f"{prefix}.{msg.name}"
    try:
        original = POOL.FindMessageTypeByName(full)
    except KeyError:
        errors.append(f"message {full} is not in tensorboard's protos")
        return
    orig_proto = descriptor_pb2.DescriptorProto()
    original.CopyToProto(orig_proto)
    orig_fields = {f.name: f for f in orig_proto.field}
    orig_numbers = {f.number for f in orig_proto.field}
    for field in msg.field:
        o = orig_fields.get(field.name)
        if o is None:
            errors.append(f"{full}.{field.name} is not in tensorboard's {full}")
            continue
        for attr in ("number", "label", "type", "type_name"):
            mine, theirs = getattr(field, attr), getattr(o, attr)
            # protoc writes fully qualified type names for both.
            if mine != theirs:
                errors.append(f"{full}.{field.name}: {attr} {mine!r}, tensorboard has {theirs!r}")
        if packed(field) != packed(o):
            errors.append(f"{full}.{field.name}: packed {packed(field)}, tensorboard has {packed(o)}")
        mine_oneof = msg.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
        their_oneof = orig_proto.oneof_decl[o.oneof_index].name if o.HasField("oneof_index") else None
        if mine_oneof != their_oneof:
            errors.append(f"{full}.{field.name}: oneof {mine_oneof}, tensorboard has {their_oneof}")
    for r in msg.reserved_range:
        for n in range(r.start, r.end):
            if n not in orig_numbers:
                errors.append(f"{full}: reserved {n} is not a field number of tensorboard's {full}")
    for nested in msg.nested_type:
        check_message(nested, full, errors)
    for enum in msg.enum_type:
        check_enum(enum, full, errors)


def check_enum(enum, prefix, errors):
    full = f"{prefix}.{enum.name}"
    try:
        original = POOL.FindEnumTypeByName(full)
    except KeyError:
        errors.append(f"enum {full} is not in tensorboard's protos")
        return
    theirs = {v.name: v.number for v in original.values}
    for v in enum.value:
        if theirs.get(v.name) != v.number:
            errors.append(f"{full}.{v.name} = {v.number}, tensorboard has {theirs.get(v.name)}")


def main():
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read())
    errors, count = [], 0
    for f in fds.file:
        if f.package != "tensorboard":
            errors.append(f"{f.name}: package {f.package!r}, expected 'tensorboard'")
        for msg in f.message_type:
            check_message(msg, f.package, errors)
            count += 1
        for enum in f.enum_type:
            check_enum(enum, f.package, errors)
            count += 1
    for e in errors:
        print("MISMATCH:", e)
    print(f"checked {len(fds.file)} files, {count} top-level types against tensorboard's descriptors: "
          f"{'OK' if not errors else str(len(errors)) + ' mismatches'}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
