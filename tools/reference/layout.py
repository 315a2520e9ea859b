"""Where this tool writes: the repository's fixture folders, and how sizes and paths are reported."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO / "test" / "fixtures" / "conformance"
OPENVINO = REPO / "test" / "fixtures" / "openvino"
SEEDS = REPO / "test" / "fixtures" / "seeds"


def tree_size(path: Path) -> int:
    """Bytes of every file under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def shown(path: Path) -> str:
    """`path` relative to the repository when inside it, so manifests carry no machine paths."""
    path = Path(path).absolute()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.as_posix()
