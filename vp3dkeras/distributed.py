"""Data-parallel training on the JAX backend: several local devices, or several workers.

Keras 3's `model.fit` does not run under TensorFlow's `MultiWorkerMirroredStrategy`
(keras-team/keras#20585: "Attempt to convert a value (PerReplica...) to a Tensor", reproduced
here with TF 2.21 / Keras 3.15). Its multi-host path is the JAX backend with
`keras.distribution`: `keras.distribution.initialize` (which calls `jax.distributed.initialize`
with the coordinator's address, the process count and this process's id) and `DataParallel`
over every process's devices. On CPU the collectives go through gloo
(`jax_cpu_collectives_implementation`).

What each worker does (`vp3dkeras.train --distribute multiworker`):
- seeds Keras alike, so every worker initialises the same weights (`DataParallel` refuses to
  place differing values);
- cuts only its own rows of every global batch (`worker_rows`), and hands them to Keras with
  `auto_shard_dataset=False`: Keras assembles the global batch from the processes' rows in
  process order (`jax.make_array_from_process_local_data`), so the global batch is exactly the
  single-process one, and no window is duplicated or dropped;
- only the chief (process 0) writes checkpoints, logs and the final model; after any restart
  every worker resumes from the chief's checkpoint in the shared run folder.

One machine with several devices: `--distribute mirrored` (or `auto` with several GPUs) is
`tf.distribute.MirroredStrategy` on the TensorFlow backend and `DataParallel` over the local
devices on JAX; on CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=N` gives JAX N
devices.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import keras


def backend_is_jax() -> bool:
    return keras.backend.backend() == "jax"


def initialize_workers(coordinator: Optional[str], num_workers: Optional[int],
                       worker_id: Optional[int]) -> Tuple[int, int]:
    """Joins the JAX cluster; returns (this worker's index, number of workers).

    coordinator: "HOST:PORT" of worker 0; num_workers, worker_id: the cluster's size and this
    process's index. Each may instead come from `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
    `KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`. Must run before
    any JAX computation. ValueError when the backend is not JAX or a setting is missing.
    """
    if not backend_is_jax():
        raise ValueError("--distribute multiworker runs on the JAX backend: set "
                         "KERAS_BACKEND=jax (Keras' fit does not run under TensorFlow's "
                         "MultiWorkerMirroredStrategy, keras-team/keras#20585)")
    import jax

    coordinator = coordinator or os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    if num_workers is None and "KERAS_DISTRIBUTION_NUM_PROCESSES" in os.environ:
        num_workers = int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"])
    if worker_id is None and "KERAS_DISTRIBUTION_PROCESS_ID" in os.environ:
        worker_id = int(os.environ["KERAS_DISTRIBUTION_PROCESS_ID"])
    if not coordinator or num_workers is None or worker_id is None:
        raise ValueError("--distribute multiworker needs --coordinator HOST:PORT, "
                         "--num-workers N and --worker-id I (or the KERAS_DISTRIBUTION_* "
                         "environment variables)")
    if not 0 <= worker_id < num_workers:
        raise ValueError(f"--worker-id {worker_id} is not in 0..{num_workers - 1}")
    # CPU devices need gloo for cross-process collectives; GPUs and TPUs ignore the setting.
    # (Asking which backend is in use here would start it, which initialize refuses after.)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(coordinator.split(",")[0], num_workers, worker_id)
    return jax.process_index(), jax.process_count()


def data_parallel(all_processes: bool):
    """`keras.distribution.DataParallel` over every process's devices (`all_processes`) or
    this process's, with our own sharding of the input (`auto_shard_dataset=False`)."""
    import jax

    devices = jax.devices() if all_processes else jax.local_devices()
    return keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)


def worker_rows(batch_size: int, worker: int, num_workers: int, num_devices: int) -> slice:
    """The rows of each global batch of `batch_size` that worker `worker` of `num_workers`
    feeds: a contiguous block, in worker order (how Keras/JAX assemble the global batch).
    ValueError unless the batch splits evenly over every device."""
    if batch_size % num_devices:
        raise ValueError(f"batch size {batch_size} does not split evenly over {num_devices} "
                         f"devices: pick a multiple of {num_devices}")
    rows = batch_size // num_workers
    return slice(worker * rows, (worker + 1) * rows)
