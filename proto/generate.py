"""Generate the Python protobuf/gRPC modules of proto/ into one package, or check they are current.

    python proto/generate.py --out scaler/pb      # regenerate
    python proto/generate.py --check scaler/pb    # exit 1 if scaler/pb is stale

Every .proto is mapped to the virtual path helios/scaler/pb/<file name>, so the generated modules
import each other as `helios.scaler.pb.*` and the package needs no import rewriting.
"""

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_PATH = "helios/scaler/pb"
PROTOS = {  # virtual name -> folder holding it
    "externalscaler.proto": PROTO_ROOT,
    "admin.proto": PROTO_ROOT / "helios/admin/v1",
}
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    well_known = Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{well_known}"]
    args += [f"-I{PACKAGE_PATH}/{name}={folder / name}" for name, folder in PROTOS.items()]
    with tempfile.TemporaryDirectory() as tmp:
        args += [f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}"]
        args += [f"{PACKAGE_PATH}/{name}" for name in PROTOS]
        if protoc.main(args) != 0:
            sys.exit("protoc failed")
        out_dir.mkdir(parents=True, exist_ok=True)
        for produced in (Path(tmp) / PACKAGE_PATH).iterdir():
            (out_dir / produced.name).write_bytes(produced.read_bytes())


def check(pkg_dir: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = sorted(p.name for p in Path(tmp).iterdir())
        have = sorted(p.name for p in pkg_dir.iterdir() if p.name.endswith(GENERATED_SUFFIXES))
        stale = [n for n in fresh if n not in have or not filecmp.cmp(Path(tmp) / n, pkg_dir / n, shallow=False)]
        stale += [n for n in have if n not in fresh]
    if stale:
        print(f"generated code is stale: {', '.join(stale)}; run `make proto`", file=sys.stderr)
        return 1
    print(f"{pkg_dir}: generated code matches proto/")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the generated modules here")
    mode.add_argument("--check", type=Path, help="compare the modules here with freshly generated ones")
    ns = parser.parse_args()
    if ns.check:
        return check(ns.check)
    generate(ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
