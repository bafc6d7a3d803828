"""The run's `tf.distribute` strategy, built once from `--strategy`, and what depends on it.

- `default`: no distribution, one device;
- `mirrored`: `MirroredStrategy` over every local device (the GPUs, else the CPU);
- `multi_worker`: `MultiWorkerMirroredStrategy`, the cluster and this task from `TF_CONFIG`
  (synchronous: every worker runs the same program; worker 0, or a task named `chief`, is
  the chief);
- `parameter_server`: `ParameterServerStrategy`, the cluster from `TF_CONFIG` (a `chief`,
  the coordinator that runs the program, plus `worker` and `ps` tasks that serve it), with
  the embedding tables partitioned over the parameter servers.

Training feeds `fit` through `strategy.distribute_datasets_from_function` (a
`DatasetCreator` for parameter servers) with the registry's input builder and its
`InputContext`. Only the chief writes results, history and exports; the other workers write
their checkpoints (every worker must save: saving reads synchronised state) to a temporary
folder of their own that is removed when they finish.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from typing import Any

import tensorflow as tf

from mbrec_tf.errors import UserError

DEFAULT, MIRRORED, MULTI_WORKER, PARAMETER_SERVER = (
    "default",
    "mirrored",
    "multi_worker",
    "parameter_server",
)
STRATEGIES = (DEFAULT, MIRRORED, MULTI_WORKER, PARAMETER_SERVER)
#: Tables smaller than this stay whole on one parameter server (the transfer matrices,
#: MLP layers); larger ones (the embedding tables) are split over the servers.
MIN_SHARD_BYTES = 64 << 10


def cluster_from_environment() -> dict[str, Any]:
    """`TF_CONFIG` as a dict (`{}` when unset), or a `UserError` when it is not JSON."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise UserError(f"TF_CONFIG is not valid JSON ({error.msg})") from None
    if not isinstance(value, dict) or "cluster" not in value:
        raise UserError('TF_CONFIG must be a JSON object with a "cluster" and a "task"')
    return value


def make_strategy(
    name: str,
    cluster_resolver: tf.distribute.cluster_resolver.ClusterResolver | None = None,
    min_shard_bytes: int = MIN_SHARD_BYTES,
) -> tf.distribute.Strategy:
    """The strategy `name` (one of `STRATEGIES`); create it before any other TF work.

    `multi_worker` and `parameter_server` read the cluster from `TF_CONFIG` unless a
    `cluster_resolver` is given (an in-process cluster in tests). Parameter servers split
    the tables of at least `min_shard_bytes` between them.
    """
    if name not in STRATEGIES:
        raise UserError(f"--strategy={name}: choose one of {', '.join(STRATEGIES)}")
    if name == DEFAULT:
        return tf.distribute.get_strategy()
    if name == MIRRORED:
        return tf.distribute.MirroredStrategy()
    if cluster_resolver is None:
        config = cluster_from_environment()
        if not config:
            raise UserError(
                f"--strategy={name} needs TF_CONFIG (the cluster and this task): start the "
                "tasks with python -m pipelines.launch_local, or set it on every machine"
            )
        cluster_resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    jobs = cluster_resolver.cluster_spec().as_dict()
    if name == MULTI_WORKER:
        if "ps" in jobs:
            raise UserError(
                "--strategy=multi_worker: TF_CONFIG names ps tasks (that is "
                "--strategy=parameter_server)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster_resolver)
    num_ps = len(jobs.get("ps", ()))
    if not num_ps or not jobs.get("worker"):
        raise UserError(
            "--strategy=parameter_server: the cluster needs at least one worker and one ps "
            "task (python -m pipelines.launch_local --workers=2 --ps=1 -- ...)"
        )
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=num_ps
    )
    return tf.distribute.experimental.ParameterServerStrategy(
        cluster_resolver, variable_partitioner=partitioner
    )


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The `STRATEGIES` name of a strategy object."""
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        return PARAMETER_SERVER
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return MULTI_WORKER
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return MIRRORED
    return DEFAULT


def serves_only(cluster: dict[str, Any] | None = None) -> bool:
    """True for a parameter-server cluster's `worker` and `ps` tasks: they run a server only."""
    cluster = cluster_from_environment() if cluster is None else cluster
    jobs = cluster.get("cluster", {})
    task = cluster.get("task", {})
    return "ps" in jobs and task.get("type") in ("worker", "ps")


def serve_forever(cluster: dict[str, Any]) -> None:
    """Runs this task's `tf.distribute.Server` until the process is stopped."""
    task = cluster["task"]
    config = tf.compat.v1.ConfigProto()
    if task["type"] == "worker":
        config.inter_op_parallelism_threads = max(4, os.cpu_count() or 1)
    server = tf.distribute.Server(
        tf.train.ClusterSpec(cluster["cluster"]),
        job_name=task["type"],
        task_index=int(task.get("index", 0)),
        config=config,
        protocol=cluster.get("rpc_layer", "grpc"),
        start=True,
    )
    server.join()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the task that writes results, history and exports (the only one, unless
    the strategy is `multi_worker`)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    if not jobs:
        return True
    if "chief" in jobs:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and int(resolver.task_id or 0) == 0


def worker_directory(directory: str, strategy: tf.distribute.Strategy) -> str:
    """`directory` on the chief; a temporary folder of this worker's inside it elsewhere."""
    if is_chief(strategy):
        return directory
    resolver = strategy.cluster_resolver
    return os.path.join(directory, f".worker_{resolver.task_type}_{resolver.task_id}_tmp")


def remove_worker_directory(directory: str, strategy: tf.distribute.Strategy) -> None:
    """Deletes the temporary folder `worker_directory` gave a non-chief worker."""
    written = worker_directory(directory, strategy)
    if written != directory and os.path.isdir(written):
        shutil.rmtree(written, ignore_errors=True)


def create_optimizer_slots(model: tf.keras.Model) -> None:
    """Creates the optimizer's slot variables for every trainable variable now.

    Keras' legacy optimizers create them inside the first step otherwise, where a
    distributed step cannot initialise them (Adagrad's accumulators under
    `MirroredStrategy`). Call inside `strategy.scope()`, after `compile`.
    """
    optimizer = model.optimizer
    if isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer):
        optimizer._create_all_weights(model.trainable_variables)  # noqa: SLF001
    elif hasattr(optimizer, "build"):
        optimizer.build(model.trainable_variables)


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """True for every strategy but the default one."""
    return strategy_name(strategy) != DEFAULT


def training_inputs(
    strategy: tf.distribute.Strategy, spec: Any, data: Any, config: Any, seed: int
) -> tuple[Any, int | None]:
    """(what `fit` iterates, steps per epoch or None) for `spec`'s training input.

    The default strategy gets the registry's input builder's one-epoch dataset as it is
    (`fit` iterates it afresh each epoch). `mirrored` and `multi_worker` get
    `strategy.distribute_datasets_from_function` over the same builder with its
    `InputContext` (each pipeline yields its replicas' shares of every global batch),
    repeated (`repeat=True`: no state in the dataset), and the steps of one epoch: the
    epochs see the same global batches as the single-device run. Parameter servers get a
    `DatasetCreator` of the repeated input (its workers cannot create dataset state).
    """
    if not is_distributed(strategy):
        return spec.build_inputs(data, config, seed), None
    steps = int(spec.build_inputs(data, config, seed).cardinality())

    def repeated(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return spec.build_inputs(data, config, seed, context, repeat=True)

    if strategy_name(strategy) == PARAMETER_SERVER:
        return tf.keras.utils.experimental.DatasetCreator(repeated), steps
    return strategy.distribute_datasets_from_function(repeated), steps


def allreduced_bytes(model: tf.keras.Model, batch: Any) -> int:
    """Bytes a synchronous step all-reduces for `batch`: what `exchanged_gradients` gives
    the replicas' all-reduce, a dense tensor whole, an `IndexedSlices` as its rows and
    their indices (for a whole-data task: the `[d, d]` item-Gram gradients, the rows of
    the batch's users and of its positives' items, and the small dense parameters)."""
    exchanged, _, _ = model.exchanged_gradients(batch)
    total = 0
    for gradient in exchanged:
        parts = (
            (gradient.values, gradient.indices)
            if isinstance(gradient, tf.IndexedSlices)
            else (gradient,)
        )
        total += sum(int(tf.size(part)) * part.dtype.size for part in parts)
    return total


def free_port() -> int:
    """A TCP port on the loopback interface that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_cluster(workers: int, ps: int = 0) -> dict[str, list[str]]:
    """A cluster spec on free loopback ports: `worker` tasks, plus `chief` and `ps` tasks
    when `ps` > 0 (the parameter-server layout: the chief coordinates)."""
    cluster: dict[str, list[str]] = {}
    if ps:
        cluster["chief"] = [f"127.0.0.1:{free_port()}"]
    cluster["worker"] = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
    if ps:
        cluster["ps"] = [f"127.0.0.1:{free_port()}" for _ in range(ps)]
    return cluster


def in_process_cluster(
    workers: int, ps: int
) -> tf.distribute.cluster_resolver.SimpleClusterResolver:
    """Worker and parameter servers started in this process (TF's documented test set-up
    for `ParameterServerStrategy`); returns the coordinator's cluster resolver."""
    jobs = {
        "worker": [f"localhost:{free_port()}" for _ in range(workers)],
        "ps": [f"localhost:{free_port()}" for _ in range(ps)],
    }
    spec = tf.train.ClusterSpec(jobs)
    worker_config = tf.compat.v1.ConfigProto()
    worker_config.inter_op_parallelism_threads = max(workers + 1, 4)
    for index in range(workers):
        tf.distribute.Server(
            spec, job_name="worker", task_index=index, config=worker_config, protocol="grpc"
        )
    for index in range(ps):
        tf.distribute.Server(spec, job_name="ps", task_index=index, protocol="grpc")
    return tf.distribute.cluster_resolver.SimpleClusterResolver(spec, rpc_layer="grpc")
