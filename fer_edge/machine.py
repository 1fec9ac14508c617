"""The machine a timing was taken on, recorded beside every figure in seconds: timings compare
only as ratios on one CPU, and int8 ratios move with the CPU's instructions."""

from __future__ import annotations

import platform
from pathlib import Path

# int8 kernels run several times faster with these (ratios to a float model change with them:
# our int8 default was 0.46x `fer`'s float tflite on one host and 1.4x on an AVX2-only one)
_SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def host() -> dict:
    """The CPU the timings were taken on: its model name and the SIMD features int8 needs."""
    cpu, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu is None:
                cpu = value.strip()
            if key.strip() in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:   # not Linux: the platform's name for the CPU is all we have
        pass
    return {"cpu": cpu or platform.processor() or platform.machine(),
            "simd": [f for f in _SIMD_FLAGS if f in flags]}
