"""Reads a TensorBoard log folder back with TensorBoard's own reader and prints what it finds.

For every run under DIR (each folder holding `events.out.tfevents.*` files, e.g. `train/` and
`validation/`), loads it with tensorboard's `EventAccumulator` and prints each tag with its
(step, value) list: TF 2 scalar tensors (plugin "scalars", listed under "tensors"), legacy scalars, and
for histograms (plugin "histograms") the bucket count and total count per step. Exits 1 if `train`
lacks `epoch_loss` or `epoch_accuracy`, or if no run is found.

Optional (not run by the tests); needs `tensorboard==2.21.0` (PyPI; it reads offline):

    python3 -m venv /work/venv-tb && /work/venv-tb/bin/pip install tensorboard==2.21.0
    /work/venv-tb/bin/python scripts/check_tensorboard_events.py LOGDIR
"""

import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util.tensor_util import make_ndarray

REQUIRED_TRAIN_TAGS = ("epoch_loss", "epoch_accuracy")


def runs(root):
    found = []
    for dirpath, _, files in os.walk(root):
        if any(f.startswith("events.out.tfevents.") for f in files):
            found.append(os.path.relpath(dirpath, root))
    return sorted(found)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    names = runs(root)
    if not names:
        print(f"no event files under {root}")
        return 1
    missing = []
    for run in names:
        ea = EventAccumulator(os.path.join(root, run), size_guidance={"tensors": 0, "scalars": 0})
        ea.Reload()
        print(f"[{run}]")
        tags = ea.Tags()
        for tag in tags["tensors"]:
            plugin = ea.SummaryMetadata(tag).plugin_data.plugin_name
            events = ea.Tensors(tag)
            if plugin == "histograms":
                points = []
                for e in events:
                    h = make_ndarray(e.tensor_proto)
                    points.append((e.step, f"{h.shape[0]} buckets, {h[:, 2].sum():g} values"))
                print(f"  {tag} ({plugin}): {points}")
            elif plugin == "scalars":
                print(f"  {tag}: {[(e.step, float(make_ndarray(e.tensor_proto))) for e in events]}")
            else:
                print(f"  {tag} ({plugin or 'no plugin'}): steps {[e.step for e in events]}")
        for tag in tags["scalars"]:
            print(f"  {tag} (legacy scalar): {[(e.step, e.value) for e in ea.Scalars(tag)]}")
        if run == "train":
            missing = [t for t in REQUIRED_TRAIN_TAGS if t not in tags["tensors"] and t not in tags["scalars"]]
    if "train" not in names:
        print("no train run")
        return 1
    if missing:
        print(f"train lacks {', '.join(missing)}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
