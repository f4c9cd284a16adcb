"""Training on several processes or machines: Keras' JAX backend with ``keras.distribution.DataParallel``.

Every process runs the whole trainer on the same options. Each holds a full
copy of the weights; each step, each decodes and trains on its share of the
global batch, and the gradients are averaged across processes (gloo on CPUs),
so every copy takes the same step. Callbacks, checkpoints and early stopping
run in every process and see the same, globally reduced metrics.

A cluster is described the way Keras reads it (``keras.distribution.initialize``)::

    KERAS_DISTRIBUTION_JOB_ADDRESSES  HOST:PORT of process 0 (or every process's, comma separated)
    KERAS_DISTRIBUTION_NUM_PROCESSES  N
    KERAS_DISTRIBUTION_PROCESS_ID     0 .. N-1

``launch_local`` starts N such processes on this machine. Before JAX
connects them, the processes meet on process 0's port (``_rendezvous``):
JAX ends a process that waits too long with an abort and a C++ stack, so
a wrong address, a process that never comes, or processes started with
different options are found here first and reported in one line.

Process 0 writes the run folder; process k > 0 keeps its own checkpoints in
``RUN/processK`` (what it resumes from, on a machine of its own or not). The
``.keras`` files are backend-independent: evaluation, calibration and export
run afterwards in a TensorFlow-backend process (the CLI starts it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from shipcam.errors import ShipcamError

__all__ = [
    "ADDRESSES",
    "NUM_PROCESSES",
    "PROCESS_ID",
    "DEFAULT_JOIN_TIMEOUT",
    "Cluster",
    "launch_local",
    "tensorflow_env",
    "free_port",
    "require_jax",
]

ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# What JAX itself waits for the processes to connect.
DEFAULT_JOIN_TIMEOUT = 300.0
# Set by launch_local in its children: they are cluster members, not launchers.
_LAUNCHED = "SHIPCAM_LAUNCHED"
_MAGIC = "shipcam-join-1"
# Options that may differ between processes: where each writes, and what it prints.
_LOCAL_OPTIONS = {"run_dir", "data", "notes", "verbose", "tensorboard"}


@dataclass(frozen=True)
class Cluster:
    """This process's place in a data-parallel run."""

    num_processes: int = 1
    process_id: int = 0
    host: str = "localhost"
    port: int = 0
    join_timeout: float = DEFAULT_JOIN_TIMEOUT

    @classmethod
    def from_env(cls, environ=None, join_timeout: float = DEFAULT_JOIN_TIMEOUT) -> "Cluster":
        """Read and check the three ``KERAS_DISTRIBUTION_*`` variables; one process when none is set."""
        env = os.environ if environ is None else environ
        if not join_timeout > 0:
            raise ShipcamError(f"the join timeout must be a positive number of seconds, received {join_timeout}")
        given = [k for k in (ADDRESSES, NUM_PROCESSES, PROCESS_ID) if env.get(k, "").strip()]
        n = _int_var(env, NUM_PROCESSES, 1) if NUM_PROCESSES in given else None
        if (n is None and not given) or n == 1:
            if PROCESS_ID in given:
                _int_var(env, PROCESS_ID, 0, 0)
            return cls(join_timeout=join_timeout)
        missing = [k for k in (ADDRESSES, NUM_PROCESSES, PROCESS_ID) if k not in given]
        if missing:
            have = ", ".join(f"{k}={env[k]!r}" for k in given)
            raise ShipcamError(f"a cluster needs {' and '.join(missing)} as well (received {have})")
        rank = _int_var(env, PROCESS_ID, 0, n - 1)
        host, port = _coordinator(env[ADDRESSES], n)
        return cls(n, rank, host, port, join_timeout)

    @property
    def is_main(self) -> bool:
        return self.process_id == 0

    @property
    def shard(self) -> tuple[int, int] | None:
        """``make_dataset``'s ``shard``: None on one process (the one-process pipeline, cache included)."""
        return (self.num_processes, self.process_id) if self.num_processes > 1 else None

    @property
    def relaunch_option(self) -> str:
        """What to add to ``--distributed jax`` to start this cluster again: ``--num-processes N`` if launched so."""
        return f" --num-processes {self.num_processes}" if is_launched_child() else ""

    def run_dir(self, run: str | os.PathLike) -> Path:
        """Where this process writes: the run folder on process 0, ``RUN/processK`` on the others."""
        return Path(run) if self.is_main else Path(run) / f"process{self.process_id}"

    def local_batch(self, batch_size: int) -> int:
        if batch_size % self.num_processes:
            raise ShipcamError(
                f"--batch-size is the global batch, shared by {self.num_processes} processes: received {batch_size}, "
                f"which {self.num_processes} does not divide"
            )
        return batch_size // self.num_processes

    def use_backend(self) -> None:
        """Select Keras' JAX backend; before Keras is imported, as Keras reads it once."""
        require_jax()
        if "keras" in sys.modules:
            import keras

            if keras.backend.backend() != "jax":
                raise ShipcamError(
                    f"--distributed jax: Keras was already loaded with the {keras.backend.backend()} backend in this "
                    "process; start it with KERAS_BACKEND=jax"
                )
        os.environ["KERAS_BACKEND"] = "jax"
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the project's targets are CPUs; set it to use accelerators

    def meet(self, options: dict, progress) -> None:
        """Wait for the other processes; raise one line unless all came and agree.

        ``options`` (the training configuration) and ``progress`` (where a
        resumed run starts) must be the same in every process. Plain sockets,
        before Keras and JAX load: a wrong address fails within seconds.
        """
        if self.num_processes > 1:
            _rendezvous(self, {k: v for k, v in options.items() if k not in _LOCAL_OPTIONS}, progress)

    def connect(self) -> object:
        """Connect JAX's processes and replicate every variable from now on; after ``meet``.

        Seed Keras first: every process builds its copy of the initial weights
        from the seed. Returns the distribution, whose ``scope()`` the trainer
        enters.
        """
        import keras

        if self.num_processes > 1:
            import jax

            # keras.distribution.initialize passes JAX no timeout. Every process has met already; what is
            # left is their loading Keras, which a busy machine can stretch past a short join timeout.
            jax.distributed.initialize(
                coordinator_address=f"{self.host}:{self.port}",
                num_processes=self.num_processes,
                process_id=self.process_id,
                initialization_timeout=int(max(60.0, self.join_timeout)),
            )
        # Each process feeds its own shard (make_dataset's shard): Keras' auto-sharding would have every
        # process decode every image and keep a part.
        distribution = keras.distribution.DataParallel(auto_shard_dataset=False)
        keras.distribution.set_distribution(distribution)
        return distribution

    def weight_spread(self, model) -> float:
        """The largest difference between any process's weights and process 0's (0.0: identical copies)."""
        import numpy as np

        flat = np.concatenate([np.asarray(w, np.float64).ravel() for w in model.get_weights()])
        if self.num_processes == 1:
            return 0.0
        from jax.experimental import multihost_utils

        every = np.asarray(multihost_utils.process_allgather(flat))
        return float(np.max(np.abs(every - every[0])))

    def shutdown(self) -> None:
        """Leave the cluster together (JAX's exit barrier), before process 0 goes on alone."""
        if self.num_processes > 1:
            import jax

            jax.distributed.shutdown()


def require_jax() -> None:
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        raise ShipcamError('--distributed jax needs JAX: pip install "shipcam[distributed]"')


def _int_var(env, name: str, lo: int, hi: int | None = None) -> int:
    text = env.get(name, "").strip()
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < lo or (hi is not None and value > hi):
        want = f"a whole number from {lo} to {hi}" if hi is not None else f"a whole number >= {lo}"
        raise ShipcamError(f"{name} must be {want}, received {text!r}")
    return value


def _coordinator(text: str, n: int) -> tuple[str, int]:
    """Process 0's ``(host, port)`` from ``HOST:PORT[,HOST:PORT...]`` (every process's, or process 0's alone)."""
    addresses = [a.strip() for a in text.split(",")]
    if len(addresses) > 1 and len(addresses) != n:
        raise ShipcamError(
            f"{ADDRESSES} lists {len(addresses)} addresses for {NUM_PROCESSES}={n} processes (received {text!r}); "
            "give one per process, or process 0's alone"
        )
    first = addresses[0]
    host, sep, port = first.rpartition(":")
    host = host.strip("[]")  # [::1]:1234
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ShipcamError(f"{ADDRESSES} must start with process 0's HOST:PORT (port 1-65535), received {text!r}")
    return host, int(port)


def _send(sock: socket.socket, obj: dict) -> None:
    sock.sendall(json.dumps(obj).encode() + b"\n")


def _recv(sock: socket.socket, limit: int = 1 << 20) -> dict | None:
    """One JSON line, or None when the peer closed first or sent something else."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk or len(data) > limit:
            return None
        data += chunk
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _listen(port: int) -> socket.socket:
    if socket.has_dualstack_ipv6():
        return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
    return socket.create_server(("", port))


def _verdict(cluster: Cluster, hellos: dict[int, dict], duplicates: list[int]) -> str | None:
    """Why these processes cannot train together, or None."""
    n = cluster.num_processes
    where = f"{cluster.host}:{cluster.port}"
    if duplicates:
        return f"more than one process was started with {PROCESS_ID}={duplicates[0]} (coordinator {where})"
    missing = [k for k in range(n) if k not in hellos]
    if missing:
        who = f"process {missing[0]}" if len(missing) == 1 else "processes " + ", ".join(map(str, missing))
        return (
            f"{who} of {n} did not join within {cluster.join_timeout:g} s (coordinator {where}): start it with "
            f"{PROCESS_ID}={missing[0]}, or set {NUM_PROCESSES} to the number you start"
        )
    main = hellos[0]
    for k in range(1, n):
        h = hellos[k]
        if h["num_processes"] != n:
            return (
                f"process {k} ({h['host']}) was started with {NUM_PROCESSES}={h['num_processes']}, process 0 with {n}"
            )
        diff = [
            key
            for key in sorted(set(main["options"]) | set(h["options"]))
            if main["options"].get(key) != h["options"].get(key)
        ]
        if diff:
            shown = "; ".join(f"{key}: {h['options'].get(key)!r} vs {main['options'].get(key)!r}" for key in diff[:3])
            return f"process {k} ({h['host']}) was started with other training options than process 0 ({shown})"
        if h["progress"] != main["progress"]:
            return (
                f"process {k} ({h['host']}) would resume at {h['progress']}, process 0 at {main['progress']}: their "
                "checkpoints differ (RUN/backup on process 0, RUN/processK/backup on the others)"
            )
    return None


def _serve(cluster: Cluster, server: socket.socket, deadline: float) -> None:
    """Process 0's side: wait for every process's hello, then send each the verdict."""
    hellos: dict[int, dict] = {}
    conns: list[socket.socket] = []
    duplicates: list[int] = []
    try:
        while len(hellos) < cluster.num_processes and time.monotonic() < deadline:
            server.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                break
            conn.settimeout(10)
            try:
                hello = _recv(conn)
            except OSError:
                hello = None
            if not hello or hello.get("magic") != _MAGIC:
                conn.close()  # a port scanner, a stray client: not one of ours
                continue
            conns.append(conn)
            k = hello["process_id"]
            if k in hellos:
                duplicates.append(k)
            hellos[k] = hello
        error = _verdict(cluster, hellos, duplicates)
        for conn in conns:
            try:
                _send(conn, {"error": error})
            except OSError:
                pass
        for conn in conns:  # the clients close first: the port is free again for JAX's coordinator
            try:
                conn.settimeout(10)
                conn.recv(1)
            except OSError:
                pass
            conn.close()
    finally:
        server.close()


def _rendezvous(cluster: Cluster, options: dict, progress) -> None:
    """Meet on process 0's port; raise ``ShipcamError`` (one line) unless all N processes came and agree."""
    k, where = cluster.process_id, f"{cluster.host}:{cluster.port}"
    deadline = time.monotonic() + cluster.join_timeout
    server_thread = None
    if cluster.is_main:
        try:
            server = _listen(cluster.port)
        except OSError as e:
            raise ShipcamError(
                f"process 0 cannot listen on port {cluster.port} ({ADDRESSES}={where}): {e.strerror or e}"
            ) from None
        # The serving thread decides; process 0 also joins as a client, which checks that the address reaches it.
        server_thread = threading.Thread(target=_serve, args=(cluster, server, deadline + 2), daemon=True)
        server_thread.start()
    hello = {
        "magic": _MAGIC,
        "process_id": k,
        "num_processes": cluster.num_processes,
        "host": socket.gethostname(),
        "options": json.loads(json.dumps(options, default=str)),
        "progress": json.loads(json.dumps(progress, default=str)),
    }
    # Process 0 listens already: when its own address does not reach it within seconds, the address is wrong.
    wait = min(cluster.join_timeout, 10.0) if cluster.is_main else cluster.join_timeout
    connect_by = time.monotonic() + wait
    sock = None
    while sock is None:
        try:
            sock = socket.create_connection(
                (cluster.host, cluster.port), timeout=max(0.1, min(5.0, connect_by - time.monotonic()))
            )
        except socket.gaierror as e:
            raise ShipcamError(
                f"process {k}: cannot resolve {cluster.host!r} ({ADDRESSES}={where}): {e.strerror}"
            ) from None
        except OSError:
            if time.monotonic() >= connect_by:
                what = "this machine (process 0)" if cluster.is_main else "process 0's machine"
                raise ShipcamError(
                    f"process {k}: nothing answered at {where} within {wait:g} s; {ADDRESSES} must name {what} and "
                    "a free port"
                ) from None
            time.sleep(0.25)
    with closing(sock):
        try:
            _send(sock, hello)
            sock.settimeout(max(1.0, deadline - time.monotonic() + 5))
            verdict = _recv(sock)
        except OSError:
            verdict = None
    if verdict is None:
        raise ShipcamError(
            f"process {k}: the coordinator at {where} closed before all processes joined (did process 0 stop? see its "
            "output)"
        )
    if server_thread is not None:
        server_thread.join()
    if verdict.get("error"):
        raise ShipcamError(verdict["error"])


def free_port(host: str = "localhost") -> int:
    with closing(socket.socket()) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tensorflow_env(environ=None) -> dict:
    """This environment for a TensorFlow-backend process outside the cluster (evaluation, export)."""
    env = dict(os.environ if environ is None else environ)
    for key in (ADDRESSES, NUM_PROCESSES, PROCESS_ID, _LAUNCHED, "JAX_PLATFORMS"):
        env.pop(key, None)
    env["KERAS_BACKEND"] = "tensorflow"
    return env


def is_launched_child(environ=None) -> bool:
    return bool((os.environ if environ is None else environ).get(_LAUNCHED))


def launch_local(argv: list[str], n: int, run_dir: str | os.PathLike, command: str = "train") -> int:
    """Run ``shipcam COMMAND ARGV`` as ``n`` JAX processes on this machine; return the exit code.

    Process 0 prints to this terminal; process k's output goes to
    ``RUN/processK/log.txt``. When one process fails the others are stopped
    (they would wait for it) and one line says which and why.
    """
    if n < 1:
        raise ShipcamError(f"--num-processes must be 1 or more, received {n}")
    run = Path(run_dir)
    port = free_port()
    procs, logs = [], []
    for k in range(n):
        env = {
            **os.environ,
            "KERAS_BACKEND": "jax",
            ADDRESSES: f"localhost:{port}",
            NUM_PROCESSES: str(n),
            PROCESS_ID: str(k),
            _LAUNCHED: "1",
        }
        env.setdefault("JAX_PLATFORMS", "cpu")
        out = None
        if k:
            log = run / f"process{k}" / "log.txt"
            log.parent.mkdir(parents=True, exist_ok=True)
            out = open(log, "w")
            logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "shipcam.cli", command, *argv],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
            )
        )
        if out:
            out.close()
    try:
        failed = _wait(procs)
    except KeyboardInterrupt:  # the children got the same Ctrl-C: they print where to resume and leave together
        _stop(procs, grace=30)
        return 130
    if failed is None:
        return 0
    k, rc = failed
    _stop(procs, grace=3)  # the others would wait on the failed one until JAX's heartbeat gives up (100 s)
    if procs[0].returncode > 0:
        return procs[0].returncode  # process 0 printed its error on this terminal (often the same for all)
    how = f"exit code {rc}" if rc >= 0 else f"killed by {signal.Signals(-rc).name}"
    reason = _last_line(logs[k - 1]) if k else ""
    hint = ""
    if (run / "config.json").exists():
        hint = f"; continue with: shipcam {command} --resume {run} --distributed jax --num-processes {n}"
    print(
        f"shipcam {command}: error: process {k} of {n} stopped ({how}{': ' + reason if reason else ''}); the others "
        f"were stopped{hint}",
        file=sys.stderr,
    )
    return rc if rc > 0 else 1


def _wait(procs: list[subprocess.Popen]) -> tuple[int, int] | None:
    """Wait until all exit 0 (None) or one fails: ``(index, returncode)``."""
    while True:
        codes = [p.poll() for p in procs]
        for k, rc in enumerate(codes):
            if rc not in (None, 0):
                return k, rc
        if all(rc == 0 for rc in codes):
            return None
        time.sleep(0.2)


def _stop(procs: list[subprocess.Popen], grace: float) -> None:
    """Let the processes end within ``grace`` seconds, then kill them.

    Not SIGTERM: on it JAX leaves through its exit barrier, which waits for
    the very process that is gone.
    """
    end = time.monotonic() + grace
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if "error" in line.lower()]
    text = (errors or lines or [""])[-1]
    return text if len(text) <= 300 else text[:297] + "..."
