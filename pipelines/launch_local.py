r"""Runs a training command as a local tf.distribute cluster: one process per task.

  python -m pipelines.launch_local --workers=2 -- --model=ehcf --dataset=beibei \
      --manual_dir=../shared/data/beibei --model_dir=runs/ehcf_2w
  python -m pipelines.launch_local --workers=2 --ps=1 -- --model=ehcf --model_dir=runs/ehcf_ps

Picks free loopback ports, gives every task its `TF_CONFIG` and starts
`python -m <--module> <flags after -->` with `--strategy=multi_worker` (without `--ps`: the
workers train in step, worker 0 is the chief) or `--strategy=parameter_server` (with
`--ps`: a chief coordinates, the workers compute, the ps tasks hold the tables). Every
line a task prints is shown with its task as prefix. Ctrl-C, or any task that fails,
stops every task; the launcher then exits with one line and a non-zero status.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from absl import app, flags

from mbrec_tf import distribute

FLAGS = flags.FLAGS
#: Seconds a task gets to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 5.0


def define_flags() -> None:
    """The launcher's own flags (the task's flags come after `--`)."""
    flags.DEFINE_integer("workers", 2, "Worker tasks.", lower_bound=1)
    flags.DEFINE_integer(
        "ps", 0, "Parameter-server tasks (> 0: --strategy=parameter_server).", lower_bound=0
    )
    flags.DEFINE_string("module", "pipelines.train", "The module every task runs.")


def task_configs(cluster: dict[str, list[str]]) -> list[tuple[str, dict]]:
    """(name, TF_CONFIG) of every task of `cluster`, the chief first."""
    order = ("chief", "worker", "ps")
    return [
        (f"{job} {index}", {"cluster": cluster, "task": {"type": job, "index": index}})
        for job in order
        for index in range(len(cluster.get(job, ())))
    ]


def with_strategy(args: Sequence[str], strategy: str) -> list[str]:
    """`args` with `--strategy=<strategy>`; a different --strategy there is an error."""
    for arg in args:
        if arg.startswith("--strategy=") and arg.split("=", 1)[1] != strategy:
            raise ValueError(f"{arg} contradicts this cluster (--strategy={strategy})")
    return [*args, f"--strategy={strategy}"]


def _stream(name: str, process: subprocess.Popen) -> None:
    """Copies a task's output to ours, each line prefixed with its task."""
    for line in process.stdout:
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()


def stop(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every running task (its process group), then SIGKILL what is left."""
    for process in processes.values():
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def launch(
    task_args: Sequence[str], workers: int, ps: int = 0, module: str = "pipelines.train"
) -> tuple[int, str | None]:
    """Runs the cluster until it is done; returns (exit status, error line or None).

    Done means: every worker finished (multi-worker), or the chief finished (parameter
    servers: its workers and ps tasks are then stopped).
    """
    strategy = distribute.PARAMETER_SERVER if ps else distribute.MULTI_WORKER
    args = with_strategy(task_args, strategy)
    cluster = distribute.local_cluster(workers, ps)
    processes: dict[str, subprocess.Popen] = {}
    threads = []
    for name, tf_config in task_configs(cluster):
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops the tasks
        )
        processes[name] = process
        thread = threading.Thread(target=_stream, args=(name, process), daemon=True)
        thread.start()
        threads.append(thread)
    needed = ["chief 0"] if ps else [f"worker {i}" for i in range(workers)]
    try:
        while True:
            failed = [
                (name, p.returncode)
                for name, p in processes.items()
                if p.poll() is not None and p.returncode != 0
            ]
            if failed:
                name, status = failed[0]
                stop(processes)
                return 1, f"task {name} failed (exit status {status}); stopped every task"
            if all(processes[name].poll() == 0 for name in needed):
                stop(processes)
                return 0, None
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop(processes)
        return 130, "interrupted: stopped every task"
    finally:
        for thread in threads:
            thread.join(timeout=1.0)


def main(argv: list[str]) -> None:
    task_args = argv[1:]
    if not task_args:
        print(
            "launch_local: error: give the task's flags after --, e.g. "
            "python -m pipelines.launch_local --workers=2 -- --model=ehcf",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        status, error = launch(task_args, FLAGS.workers, FLAGS.ps, FLAGS.module)
    except ValueError as mistake:
        print(f"launch_local: error: {mistake}", file=sys.stderr)
        sys.exit(2)
    if error:
        print(f"launch_local: error: {error}", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    define_flags()
    app.run(main)
