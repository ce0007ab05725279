"""Worker processes for the dev tools and tests: start one, read its /metrics, wait for it, stop it."""
from __future__ import annotations

import contextlib
import ctypes
import math
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from streams.settings import Settings

#: (sample name, labels, value) of one exposed sample.
Sample = tuple[str, dict[str, str], float]
#: Settings for a dev tool's own workers, which it asks over loopback HTTP (`scrape`): a deployment's address and
#: certificate settings in the environment are not theirs.
LOOPBACK_HTTP = {"web_bind": "127.0.0.1", "web_tls_cert_file": "", "web_tls_key_file": ""}


def die_with_parent() -> None:
    """Linux (a child's preexec_fn): the child gets SIGTERM when the thread that started it dies, even by
    SIGKILL, so no worker, broker or server outlives a killed test or tool."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _scorer_process(args: list[str], settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """`scorer ARGS` in a child process on these settings, output to `log_path`, dying with its parent."""
    from os import environ

    return subprocess.Popen([sys.executable, "-m", "streams.cli", *args], env={**environ, **settings.to_env()},
                            stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent if sys.platform == "linux" else None)


def worker_process(settings: Settings, web_port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`scorer worker` in a child process on these settings, its HTTP on `web_port`, output to `log_path`."""
    return _scorer_process(["worker", "--loglevel", "warn"], settings.copy(web_port=web_port), log_path)


def trainer_process(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """`scorer train` in a child process on these settings (workers beside it: SCORER_TRAINER=external)."""
    return _scorer_process(["train"], settings, log_path)


def notify_process(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """`scorer notify` in a child process on these settings (its notifications to the webhook, or the log)."""
    return _scorer_process(["notify"], settings, log_path)


def stop(processes: list[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """SIGTERM each, then SIGKILL what has not exited after `grace` seconds."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def samples(web_port: int) -> list[Sample]:
    """Every sample the worker on `web_port` exposes (Prometheus text format, parsed by prometheus_client)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def totals(found: list[Sample]) -> dict[str, float]:
    """Each sample name summed over its labels (enough for progress checks)."""
    out: dict[str, float] = {}
    for name, _, value in found:
        out[name] = out.get(name, 0.0) + value
    return out


def scrape(web_port: int) -> dict[str, float]:
    return totals(samples(web_port))


def scrape_if_up(web_port: int) -> dict[str, float]:
    """Like `scrape`, but empty while the worker is not listening yet (starting, or gone)."""
    try:
        return scrape(web_port)
    except OSError:
        return {}


def histogram_buckets(found: list[Sample], name: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) of histogram `name`, by upper bound."""
    return sorted((float(labels["le"]), value) for sample, labels, value in found if sample == f"{name}_bucket")


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile of measured values by nearest rank (one of them, never interpolated); None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Quantile of a histogram from cumulative (le, count), interpolated as Prometheus does."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return upper
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return None


def wait_until_scored(web_port: int, expected: int, process: subprocess.Popen[bytes], final_watermark: float,
                      partitions: int, timeout: float = 900) -> dict[str, float]:
    """Until the worker has read every record, every partition's watermark has reached
    `final_watermark`, and two whole processing passes have finished since."""
    deadline = time.monotonic() + timeout
    passes_at_watermark = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}")
        try:
            found = samples(web_port)
        except OSError:
            time.sleep(0.5)
            continue
        summed = totals(found)
        marks = [v for name, _, v in found if name == "scorer_event_time_watermark_seconds"]
        passes = summed.get("scorer_batch_size_records_count", 0)
        reached = (summed.get("scorer_events_consumed_total", 0) >= expected and len(marks) >= partitions
                   and min(marks) >= final_watermark)
        if reached and passes_at_watermark is None:
            passes_at_watermark = passes
        if passes_at_watermark is not None and passes >= passes_at_watermark + 2:
            return summed
        time.sleep(0.5)
    raise TimeoutError("worker did not finish scoring in time")
