"""Write the first N test samples of an export directory as raw float32 for the C app.

python make_samples.py EXPORT_DIR samples.bin [--limit 10]
"""

import argparse
from pathlib import Path

import numpy as np

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("export_dir", type=Path)
parser.add_argument("out", type=Path)
parser.add_argument("--limit", type=int, default=10)
args = parser.parse_args()
with np.load(args.export_dir / "test.npz", allow_pickle=False) as data:
    x = data["x"][: args.limit].astype("<f4")
args.out.write_bytes(x.tobytes())
print(f"wrote {len(x)} samples of {x[0].size} features to {args.out}")
