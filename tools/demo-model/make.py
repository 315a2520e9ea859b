"""The one command: trains (or resumes) the demo model, exports it into
models/demo, and writes its manifest. Run from the repository root:

    python tools/demo-model/make.py [--minutes M]

Interrupted or out of time? Run it again: training resumes from the last
checkpoint in tools/demo-model/.cache/checkpoints/ (every 100 steps).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", default="80", help="training time limit for this run (default 80)")
    args = ap.parse_args()
    subprocess.run([sys.executable, str(HERE / "train.py"), "--minutes", args.minutes], check=True)
    subprocess.run([sys.executable, str(HERE / "export.py")], check=True)


if __name__ == "__main__":
    main()
