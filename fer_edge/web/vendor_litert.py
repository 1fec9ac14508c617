"""Refresh the vendored LiteRT.js runtime (fer_edge/web/litert/) from npm: a maintainer's step,
never run by `fer-edge export` (see docs/export.md, "The browser").

    python -m fer_edge.web.vendor_litert            # the pinned version again
    python -m fer_edge.web.vendor_litert 2.6.0      # another version of @litertjs/core

`npm pack` fetches @litertjs/core and its one dependency, @litertjs/wasm-utils, of the same
version (npm checks each tarball against the registry's integrity hash); the files the page
loads are copied in and `litert/PIN.json` records the versions, the tarballs' integrity and
each copied file's sha256, which the builder checks before it copies them into a page.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "litert"
PIN = HERE / "PIN.json"
CORE = "@litertjs/core"
UTILS = "@litertjs/wasm-utils"
# The two builds LiteRT.js chooses between without extra page headers: the relaxed-SIMD one
# (Chromium, Firefox) and the compat one (browsers without relaxed SIMD, Safari). The threaded
# build needs a cross-origin-isolated page (COOP/COEP headers: not "any static server") and the
# JSPI build is only for WebNN / WebGPU partitioning, which the page does not use.
WASM_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal")
# packed file -> its name in litert/
FILES = {(CORE, "dist/index.js"): "litert.js",
         (UTILS, "dist/index.js"): "wasm-utils.js",
         **{(CORE, f"wasm/{b}.{ext}"): f"{b}.{ext}" for b in WASM_BUILDS for ext in ("js", "wasm")}}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(package: str, version: str, into: Path) -> tuple[Path, dict]:
    """`npm pack` of package@version unpacked under `into`; (its folder, npm's record)."""
    done = subprocess.run(["npm", "pack", "--json", f"{package}@{version}"], cwd=into,
                          check=True, capture_output=True, text=True)
    record = json.loads(done.stdout)[0]
    folder = into / package.replace("/", "+")
    with tarfile.open(into / record["filename"]) as tar:
        tar.extractall(folder, filter="data")
    return folder / "package", record


def refresh(version: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        packed, records = {}, {}
        for package in (CORE, UTILS):
            packed[package], records[package] = _pack(package, version, Path(tmp))
        core_meta = json.loads((packed[CORE] / "package.json").read_text())
        if core_meta.get("license") != "Apache-2.0":
            raise SystemExit(f"{CORE} {version} is not Apache-2.0 ({core_meta.get('license')})")
        HERE.mkdir(exist_ok=True)
        for (package, inside), name in FILES.items():
            shutil.copyfile(packed[package] / inside, HERE / name)
    pin = {"packages": {p: {"version": r["version"], "integrity": r["integrity"],
                            "license": "Apache-2.0"} for p, r in records.items()},
           "files": {name: sha256(HERE / name) for name in FILES.values()}}
    PIN.write_text(json.dumps(pin, indent=2) + "\n")
    return pin


if __name__ == "__main__":
    pinned = json.loads(PIN.read_text())["packages"][CORE]["version"] if PIN.exists() else None
    wanted = sys.argv[1] if len(sys.argv) > 1 else pinned
    if not wanted:
        raise SystemExit("usage: python -m fer_edge.web.vendor_litert VERSION")
    pin = refresh(wanted)
    print(json.dumps(pin["packages"]))
