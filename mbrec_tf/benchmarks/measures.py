"""Timing summaries, peak resident memory and the machine: what qualifies every benchmark figure."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
from typing import Any

import tensorflow as tf


def summary(seconds: list[float]) -> dict[str, Any]:
    """Median and min of timed runs, with the raw values."""
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "all": [round(s, 4) for s in seconds],
    }


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since the start or the last
    `reset_peak_rss` (Linux: VmHWM; elsewhere getrusage, since the start)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak_rss() -> bool:
    """Starts a new peak-RSS measurement where the OS allows it (Linux); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, library versions and load, to qualify the figures."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = list(os.getloadavg())
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_bytes"] = int(pages * page_size)
    except (ValueError, OSError):
        pass
    return info
