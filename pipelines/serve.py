r"""Serves exported models over TensorFlow Serving's REST (and gRPC) API on this machine.

  python -m pipelines.serve --model_base_path=runs/ehcf/beibei/export --model_name=ehcf
  curl -d '{"instances": ["1001"]}' http://127.0.0.1:8501/v1/models/ehcf:predict

The flags mirror `tensorflow_model_server`'s (--model_name, --model_base_path,
--rest_api_port is --port here, --grpc_port is its --port, --file_system_poll_wait_seconds,
--model_version_policy stands for the model config's policy). A new version folder exported
under the base path is loaded and warmed up in the background and then served without a
restart. Binds to 127.0.0.1 unless --host says otherwise (the server has no
authentication). For production, serve the same base path with TensorFlow Serving (see the
README).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC's errors reach the user as one line

from absl import flags, logging

from mbrec_tf.serving import load_retries
from mbrec_tf.serving import server as server_lib
from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """All flags of the serving pipeline."""
    flags.DEFINE_string(
        "model_base_path",
        None,
        "Folder of integer version subfolders (an export_dir).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "model_name",
        "default",
        "Name in the URL: /v1/models/<model_name>:predict.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "host",
        "127.0.0.1",
        "Address to bind (0.0.0.0 exposes the server to the network).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "port",
        8501,
        "HTTP port (0: any free port; the URL is printed).",
        lower_bound=0,
        upper_bound=65535,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "grpc_port",
        None,
        "Also serve TF Serving's gRPC PredictionService on this port (0: any free port; "
        "default: no gRPC).",
        lower_bound=0,
        upper_bound=65535,
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "model_version_policy",
        "latest",
        "Versions to serve, as TF Serving's model_version_policy: latest (the newest), "
        "latest:N (the N newest), all, or specific:V1,V2,...",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "read_timeout",
        server_lib.DEFAULT_READ_TIMEOUT,
        "Seconds a client has to send a whole request, head and body, from its first byte; "
        "then 408 and the connection is closed.",
        lower_bound=0.01,
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "idle_timeout",
        server_lib.DEFAULT_IDLE_TIMEOUT,
        "Seconds a connection may wait for its next request to begin before it is closed.",
        lower_bound=0.01,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_connections",
        server_lib.DEFAULT_MAX_CONNECTIONS,
        "Most open HTTP connections (one thread each); more get a 503.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "listen_backlog",
        server_lib.DEFAULT_LISTEN_BACKLOG,
        "Connections the kernel queues before they are accepted (capped by somaxconn).",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "file_system_poll_wait_seconds",
        1.0,
        "How often to look for a new version.",
        lower_bound=0.01,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_num_load_retries",
        load_retries.MAX_LOAD_RETRIES,
        "Times a version that failed to load is tried again while its files do not change "
        "(a version folder picked up mid-copy loads once the copy is complete).",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "load_retry_interval_seconds",
        load_retries.LOAD_RETRY_SECONDS,
        "Seconds before the first retry of a failed load; each next retry waits twice as long "
        f"(at most {load_retries.MAX_RETRY_WAIT_SECONDS:g} s).",
        lower_bound=0.01,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_ids",
        server_lib.DEFAULT_MAX_IDS,
        "Most values per input in one request.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_output_values",
        server_lib.DEFAULT_MAX_OUTPUT_VALUES,
        "Most values one reply may hold, summed over its outputs (users x k x 2 for top-k); "
        "a larger request is refused (400 / INVALID_ARGUMENT) before the model runs.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.mark_flag_as_required("model_base_path", flag_values=flag_values)


def make_server(flag_values: flags.FlagValues = FLAGS) -> server_lib.ModelServer:
    """The server the flags describe (not started); a one-line usage error if they are wrong."""
    try:
        policy = server_lib.VersionPolicy.parse(flag_values.model_version_policy)
    except ValueError as error:
        common.usage_error(str(error))
    try:
        return server_lib.ModelServer(
            flag_values.model_base_path,
            flag_values.model_name,
            host=flag_values.host,
            port=flag_values.port,
            grpc_port=flag_values.grpc_port,
            poll_seconds=flag_values.file_system_poll_wait_seconds,
            version_policy=policy,
            max_ids=flag_values.max_ids,
            max_output_values=flag_values.max_output_values,
            read_timeout=flag_values.read_timeout,
            idle_timeout=flag_values.idle_timeout,
            max_connections=flag_values.max_connections,
            listen_backlog=flag_values.listen_backlog,
            max_load_retries=flag_values.max_num_load_retries,
            load_retry_seconds=flag_values.load_retry_interval_seconds,
        )
    except OSError as error:  # the port is taken, the host is not this machine's, ...
        common.usage_error(
            f"cannot listen on {flag_values.host} (--port={flag_values.port}, "
            f"--grpc_port={flag_values.grpc_port}): {error}"
        )


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.INFO)
    server = make_server(FLAGS)
    grpc = "" if server.grpc_port is None else f" and gRPC on {server.host}:{server.grpc_port}"
    print(
        f"serving model {FLAGS.model_name!r} from {FLAGS.model_base_path} "
        f"(versions: {FLAGS.model_version_policy}){grpc} at "
        f"{server.url}/v1/models/{FLAGS.model_name}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)


if __name__ == "__main__":
    define_flags()
    common.run(main)
