"""Where the per-clip work runs: this process, local worker processes, or a Ray cluster.

`run_jobs(function, jobs, engine=...)` calls `function(*job)` for every job and yields the
results as they finish (in no fixed order). The function must not raise (`synth.render`'s
`_process_safely` turns every error into a result) and must be importable by name, since
workers import it rather than receive its code.

- "local" (the default): `workers` <= 1 runs in this process; more use a
  `ProcessPoolExecutor` with the "spawn" start method ("fork" hangs with OpenGL, PLATFORM.md).
- "ray": one Ray task per job on the cluster at `address` ("auto", "HOST:PORT", "ray://...")
  or, without one, on a local Ray started here with `workers` CPUs. A task whose worker
  process dies (killed, out of memory, node lost) is run again, up to `RAY_MAX_RETRIES`
  times: the per-clip work writes each file under a temporary name and renames it, so a
  killed attempt leaves no half-written record, and the retry rewrites the clip whole.
  Every node needs this package importable (installed, or the repository on PYTHONPATH).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Callable, Iterable, Iterator, Optional, Sequence

ENGINES = ("local", "ray")
RAY_MAX_RETRIES = 3
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker() -> None:
    """Worker processes share the cores: software OpenGL rasterises on one thread each."""
    os.environ.setdefault("LP_NUM_THREADS", "1")


def run_local(function: Callable, jobs: Sequence[tuple], workers: int = 1) -> Iterator:
    """Results of `function(*job)`: in this process, or in `workers` spawned processes."""
    if workers <= 1:
        for job in jobs:
            yield function(*job)
        return
    # Each worker is one core's worth: multithreaded BLAS on our small matrices only adds
    # contention. Spawned workers read these when they import NumPy.
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker) as executor:
        futures = [executor.submit(function, *job) for job in jobs]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def start_ray(address: Optional[str] = None, num_cpus: Optional[int] = None) -> bool:
    """Joins the Ray cluster at `address`, or starts a local Ray with `num_cpus` CPUs, unless
    Ray is running in this process already; True when this call started it (its caller shuts
    it down). ValueError (one line) when Ray is not installed or cannot be started or
    joined: `synth.render` calls this before it writes anything."""
    try:
        import ray
    except ImportError:
        raise ValueError("--engine ray needs Ray: pip install ray") from None
    if ray.is_initialized():
        return False
    env = {var: "1" for var in _THREAD_VARS}
    env["LP_NUM_THREADS"] = "1"
    if os.environ.get("PYTHONPATH"):  # a checkout run in place: workers import it too
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    options = {"include_dashboard": False, "log_to_driver": False,
               "runtime_env": {"env_vars": env}}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError) as error:
        where = f"--ray-address {address}" if address else "a local Ray"
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"{where}: cannot start or join Ray ({detail})") from None
    return True


def run_ray(function: Callable, jobs: Sequence[tuple], address: Optional[str] = None,
            num_cpus: Optional[int] = None,
            failed: Optional[Callable[[tuple, str], object]] = None) -> Iterator:
    """Results of `function(*job)`, one Ray task per job (see the module docstring).

    address: the cluster to join; None starts a local Ray with `num_cpus` CPUs, shut down
    again when the iterator finishes. failed(job, message): the result for a job whose
    every attempt was lost with its worker (without it, Ray's error is raised).
    ValueError (one line) when Ray is not installed.
    """
    import ray  # start_ray has said in one line when it is not installed

    started_here = start_ray(address, num_cpus)
    try:
        task = ray.remote(num_cpus=1, max_retries=RAY_MAX_RETRIES)(function)
        job_of = {}
        for job in jobs:
            job_of[task.remote(*job)] = job
        pending = list(job_of)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as error:
                if failed is None:
                    raise
                message = str(error).strip().splitlines()[0]
                yield failed(job_of[done[0]], f"lost {RAY_MAX_RETRIES + 1} times with its "
                                              f"Ray worker: {message}")
    finally:
        if started_here:
            ray.shutdown()


def run_jobs(function: Callable, jobs: Iterable[tuple], engine: str = "local",
             workers: int = 1, address: Optional[str] = None,
             failed: Optional[Callable[[tuple, str], object]] = None) -> Iterator:
    """Results of `function(*job)` for every job on `engine` ("local" or "ray"); see
    `run_local` and `run_ray` for `workers`, `address` and `failed`."""
    jobs = list(jobs)
    if engine == "local":
        return run_local(function, jobs, workers)
    if engine == "ray":
        return run_ray(function, jobs, address, num_cpus=workers if workers > 1 else None,
                       failed=failed)
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
