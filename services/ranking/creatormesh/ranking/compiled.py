"""The ranking service's compiled serving path (``services/ranking/serving``, C++): building it with CMake.

The Python ranker stays the reference: the C++ code computes the same things from the same checkpoint, and the
parity tests hold it to that. The toolchain comes from Debian's packages (``make cpp-toolchain``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "serving"
BUILD_DIR = SOURCE.parents[2] / ".creatormesh" / "build" / "ranking-serving"  # in the repo, ignored by git
BINARY = "ranking-serving"
TOOLS = ("cmake", "g++", "pkg-config", "protoc", "grpc_cpp_plugin")
PACKAGES = ("eigen3", "nlohmann_json", "hiredis", "libcrypto", "grpc++", "protobuf")  # pkg-config names


class ToolchainMissing(RuntimeError):
    """The C++ toolchain or a library is not installed."""


def missing() -> list[str]:
    """What is missing to build the compiled path (empty when it can be built)."""
    out = [tool for tool in TOOLS if shutil.which(tool) is None]
    if "pkg-config" not in out:
        out += [p for p in PACKAGES if subprocess.run(["pkg-config", "--exists", p], check=False).returncode]
    return out


def build(build_dir: Path = BUILD_DIR, source: Path = SOURCE, target: str | None = None) -> Path:
    """Configure (once) and build into ``build_dir`` (every target, or only ``target``); returns that binary
    (``ranking-serving`` by default). Incremental."""
    if gaps := missing():
        raise ToolchainMissing(f"cannot build the compiled path, missing: {', '.join(gaps)} (make cpp-toolchain)")
    build_dir.mkdir(parents=True, exist_ok=True)
    if not (build_dir / "CMakeCache.txt").exists():
        _run(["cmake", "-S", str(source), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", str(build_dir), "--parallel", "2", *(["--target", target] if target else [])])
    return build_dir / (target or BINARY)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:2])} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
