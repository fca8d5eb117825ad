"""What the benchmark scripts record about the machine (no JAX import, so that any
script, whatever its precision, can use it)."""

from __future__ import annotations

import os
import platform
import resource
import sys
from importlib import metadata


def version(pkg: str) -> str | None:
    """The installed version of `pkg`, or `None`."""
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Platform, CPU model and counts, memory, Python version and load average."""
    cpu_model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem_gb = None
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or cpu_model,
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": usable,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def max_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024**2 if sys.platform == "darwin" else r / 1024
