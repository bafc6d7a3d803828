r"""Speed and memory of the streaming UserBehavior.csv parser on a generated log.

  python -m pipelines.parse_benchmark --lines=10000000 --output_dir=/tmp/parse_bench

Writes a UserBehavior.csv-shaped file of `--lines` random events into `--output_dir` (once;
an existing file of the same size is reused), then streams it through
`taobao_user_behavior.stream_user_behavior` in a fresh process and prints rows per second,
the wall and CPU seconds, and the parsing process's peak resident memory (the file is never
held whole: memory is bounded by one chunk of text). The file is written in blocks, so the
writing is bounded too.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from absl import app, flags

FLAGS = flags.FLAGS

_BLOCK_LINES = 1_000_000


def define_flags() -> None:
    flags.DEFINE_integer("lines", 10_000_000, "Lines of the generated log.", lower_bound=1)
    flags.DEFINE_string("output_dir", None, "Folder of the generated log (not the repo).")
    flags.DEFINE_integer("seed", 0, "Seed of the generated events.")
    flags.mark_flag_as_required("output_dir")


def write_log(path: str, lines: int, seed: int = 0) -> None:
    """A UserBehavior.csv-shaped file: `user,item,category,behavior,timestamp` lines."""
    rng = np.random.default_rng(seed)
    names = np.array(["pv", "fav", "cart", "buy"])
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with pa.OSFile(path, "wb") as sink:
        for start in range(0, lines, _BLOCK_LINES):
            count = min(_BLOCK_LINES, lines - start)
            behavior = rng.choice(4, size=count, p=[0.895, 0.03, 0.055, 0.02])
            table = pa.table(
                {
                    "user": rng.integers(1, 1_018_011, size=count),
                    "item": rng.integers(1, 5_163_070, size=count),
                    "category": rng.integers(1, 5_162_429, size=count),
                    "behavior": names[behavior],
                    "timestamp": rng.integers(1_511_544_070, 1_512_316_799, size=count),
                }
            )
            pacsv.write_csv(table, sink, write_options=options)


def parse(path: str, results: multiprocessing.Queue) -> None:
    """Streams the log once (in a fresh process, so peak memory is the parser's own)."""
    import tfds_builders

    start, cpu_start = time.perf_counter(), time.process_time()
    rows, buys, chunks = 0, 0, 0
    for chunk in tfds_builders.stream_user_behavior(path):
        rows += len(chunk["user"])
        buys += int(np.sum(chunk["behavior"] == 3))
        chunks += 1
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (
        1 if sys.platform == "darwin" else 1024
    )
    results.put(
        {
            "rows": rows,
            "buys": buys,
            "chunks": chunks,
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu_start,
            "rows_per_second": rows / seconds,
            "peak_rss_bytes": int(peak),
        }
    )


def main(argv: list[str]) -> None:
    del argv
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    path = os.path.join(FLAGS.output_dir, f"UserBehavior_{FLAGS.lines}_seed{FLAGS.seed}.csv")
    if not os.path.exists(path):
        start = time.perf_counter()
        write_log(path, FLAGS.lines, FLAGS.seed)
        print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=parse, args=(path, queue))
    process.start()
    result = queue.get()
    process.join()
    result |= {
        "file_bytes": os.path.getsize(path),
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }
    print(
        f"{result['rows']:,} lines ({result['file_bytes'] / 2**30:.2f} GiB) in "
        f"{result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU): "
        f"{result['rows_per_second']:,.0f} rows/s, peak RSS "
        f"{result['peak_rss_bytes'] / 2**30:.2f} GiB, load average {result['load_average']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    define_flags()
    app.run(main)
