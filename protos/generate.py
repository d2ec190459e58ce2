"""Generates the Python stubs from the .proto files: `python -m protos.generate [OUT_DIR]`."""

import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = sorted((ROOT / "protos" / "visualsearch" / "v1").glob("*.proto"))


def generate(out: Path = ROOT) -> list[Path]:
    """Writes *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every .proto under `out`.

    Returns:
        The generated files.

    Raises:
        RuntimeError: protoc rejected a .proto file.
    """
    from grpc_tools import protoc  # a dev dependency: only needed to regenerate

    well_known = resources.files("grpc_tools") / "_proto"
    sources = [str(path.relative_to(ROOT)) for path in PROTOS]
    args = ["protoc", f"-I{ROOT}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}"]
    if protoc.main([*args, f"--grpc_python_out={out}", *sources]) != 0:
        raise RuntimeError("protoc failed; see the messages above")
    return sorted((out / "protos" / "visualsearch" / "v1").glob("*_pb2*.py*"))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT):
        print(path)
