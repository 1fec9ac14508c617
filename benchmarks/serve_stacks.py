"""serve's web stack beside an alternative, with no model in the way: the same minimal
Starlette app (POST / answers the body's length as JSON) under uvicorn (its pure-Python h11
protocol, what `fer-edge serve` runs) and under hypercorn, each in its own process, each
installed alone into a folder (`pip install --target`): install size, resident memory at rest
and after the load, requests/s and p50/p99 of 50 keep-alive clients posting
examples/astronaut.jpg for --seconds.

    python benchmarks/serve_stacks.py --seconds 10 --out reports/serve/stacks.json
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import IMAGE, free_port, load, rss_mb  # noqa: E402

STACKS = {"uvicorn": ["uvicorn", "starlette"], "hypercorn": ["hypercorn", "starlette"]}
APP = textwrap.dedent("""
    import sys
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request):
        return JSONResponse({"bytes": len(await request.body())})

    app = Starlette(routes=[Route("/v1/classify", echo, methods=["POST"])])
    stack, port = sys.argv[1], int(sys.argv[2])
    if stack == "uvicorn":
        import uvicorn
        uvicorn.run(app, host="127.0.0.1", port=port, http="h11", log_level="error",
                    access_log=False)
    else:
        import asyncio
        from hypercorn.asyncio import serve
        from hypercorn.config import Config
        config = Config()
        config.bind, config.loglevel, config.accesslog = [f"127.0.0.1:{port}"], "ERROR", None
        asyncio.run(serve(app, config))
""")


def install(folder: Path, packages: list[str]) -> float:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target",
                    str(folder), *packages], check=True, capture_output=True)
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)


def measure(stack: str, folder: Path, seconds: float) -> dict:
    import socket

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(folder)}
    proc = subprocess.Popen([sys.executable, "-c", APP, stack, str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
        at_rest = rss_mb(proc.pid)
        result = asyncio.run(load(port, IMAGE.read_bytes(), 50, seconds))
        return {"rss_mb_at_rest": at_rest, "rss_mb_after_load": rss_mb(proc.pid),
                "requests_per_second": result["served_per_second"],
                "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
                "other_statuses": result["other_statuses"],
                "dropped_connections": result["dropped_connections"]}
    finally:
        proc.terminate()
        proc.wait(10)


def main(seconds: float = 10, out: str | None = None):
    from fer_edge.machine import host

    result = {"cpu": host()["cpu"], "cores": os.cpu_count(), "python": sys.version.split()[0],
              "app": "minimal Starlette app, POST of a 30 KB photo, JSON answer (no model)",
              "clients": 50, "seconds": seconds}
    with tempfile.TemporaryDirectory() as tmp:
        for stack, packages in STACKS.items():
            folder = Path(tmp) / stack
            size = install(folder, packages)
            names = sorted(p.name.split("-")[0] for p in folder.glob("*.dist-info"))
            result[stack] = {"install_mb": size, "packages": names,
                             "compiled_files": sum(1 for _ in folder.rglob("*.so")),
                             **measure(stack, folder, seconds)}
    result["command"] = "python benchmarks/serve_stacks.py " + " ".join(sys.argv[1:])
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    import fire

    fire.Fire(main, serialize=lambda result: None)
