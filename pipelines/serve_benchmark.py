r"""Benchmarks the local server: requests/s and p50/p99 latency, REST and gRPC, under load.

  python -m pipelines.serve_benchmark --export_dir=runs/ehcf/beibei/export
  python -m pipelines.serve_benchmark --export_dir=runs/ehcf/beibei/export \
      --concurrency=100 --batch_sizes=1 --requests=5000 --new_connection_concurrency=100

`pipelines.serve` is started in its own process on free loopback ports (REST and gRPC), over
a temporary base path whose version 1 links to the export's latest version, and stopped at
the end. Each request asks `serving_default` for the top-k of --batch_sizes random known
users (drawn from the export with --seed). For every protocol, number of concurrent clients
(--concurrency) and batch size, the clients (threads, each with its own keep-alive
connection or gRPC channel) send --requests measured requests after --warmup_requests
unmeasured ones. --new_connection_concurrency clients open a new TCP connection for every
REST request. The version-switch run (--switch_concurrency clients, REST, 1 user per
request) publishes version 2 (another link to the same export) after --switch_after_seconds
and keeps sending until the server has loaded, warmed up and switched to it and 2 s more
(the old version is freed then); it reports the requests sent before the switch (steady
state) and those sent from publishing version 2 to the end of those 2 s.
Latency is measured per request by the client (send to full reply); failed requests
(connection errors, non-200 replies) are counted, not hidden.
"""

from __future__ import annotations

import os

from absl import flags

from mbrec_tf import files
from mbrec_tf.benchmarks import serving_load
from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """All flags of the serving benchmark."""
    flags.DEFINE_string(
        "export_dir",
        None,
        "Exported model base folder (served, and the users are drawn from it).",
        flag_values=flag_values,
    )
    flags.DEFINE_list("batch_sizes", ["1", "64"], "Users per request.", flag_values=flag_values)
    flags.DEFINE_list(
        "concurrency", ["1", "20", "100"], "Concurrent clients to try.", flag_values=flag_values
    )
    flags.DEFINE_list("protocols", ["rest", "grpc"], "rest and/or grpc.", flag_values=flag_values)
    flags.DEFINE_integer(
        "requests",
        1000,
        "Measured requests per configuration (all clients together).",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "warmup_requests",
        20,
        "Unmeasured requests first, per configuration.",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "new_connection_concurrency",
        ["100"],
        "Clients that open a new connection per REST request (1 user each); empty: none.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "switch_concurrency",
        20,
        "Clients during the version-switch run (0: no switch run).",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "switch_after_seconds",
        5.0,
        "Steady-state seconds before version 2 is published in the switch run.",
        lower_bound=0.5,
        flag_values=flag_values,
    )
    flags.DEFINE_integer("seed", 0, "Seed for drawing users.", flag_values=flag_values)
    flags.DEFINE_string(
        "output_json", None, "Also write the results here.", flag_values=flag_values
    )
    flags.mark_flag_as_required("export_dir", flag_values=flag_values)


def main(argv: list[str]) -> None:
    """Checks the flags, measures the export under every load and prints the table."""
    del argv
    from mbrec_tf.serving import export as export_lib

    try:
        version_dir = os.path.realpath(export_lib.resolve_version_dir(FLAGS.export_dir))
        batch_sizes = [int(b) for b in FLAGS.batch_sizes]
        concurrencies = [int(c) for c in FLAGS.concurrency]
        new_connection = [int(c) for c in FLAGS.new_connection_concurrency]
    except (FileNotFoundError, ValueError) as error:
        common.usage_error(str(error))
    unknown = sorted(set(FLAGS.protocols) - {"rest", "grpc"})
    if unknown:
        common.usage_error(f"--protocols: unknown {unknown}; use rest and/or grpc")
    plan = serving_load.LoadPlan(
        protocols=FLAGS.protocols,
        concurrencies=concurrencies,
        batch_sizes=batch_sizes,
        requests=FLAGS.requests,
        warmup_requests=FLAGS.warmup_requests,
        new_connection=new_connection,
        switch_concurrency=FLAGS.switch_concurrency,
        switch_after_seconds=FLAGS.switch_after_seconds,
        seed=FLAGS.seed,
    )
    rows, record = serving_load.measure(plan, version_dir)
    print(serving_load.report(version_dir, rows, record))
    if FLAGS.output_json:
        record["export"] = version_dir
        files.write_json(FLAGS.output_json, record, sort_keys=False)


if __name__ == "__main__":
    define_flags()
    common.run(main)
