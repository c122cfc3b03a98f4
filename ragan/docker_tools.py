"""Build and run ragan's container image from Python or a notebook, through the Docker SDK.

``ragan docker build`` and ``ragan docker run`` call :func:`build_image` and :func:`run_container`;
they do what ``docker build -t ragan .`` and ``docker run --gpus all -v "$PWD:/work" ragan ...`` do,
with defaults that suit ragan: all GPUs, the current folder mounted at ``/work`` (the image's working
directory), and the caller's own uid so that runs written to the mounted folder belong to them.

The daemon is found the way the ``docker`` command finds it without contexts: ``DOCKER_HOST``
(``unix://...``, ``tcp://host:port``, ``ssh://...``), ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH``,
else the local socket. Without a reachable daemon every function raises a one-line
:class:`~ragan.errors.RaganError`.

Example:
    >>> from ragan import docker_tools
    >>> docker_tools.build_image(".", tag="ragan")                      # doctest: +SKIP
    >>> docker_tools.run_container(["train", "dcgan", "--data", "/work/prepared",
    ...                             "--out", "/work/runs/dcgan"])        # doctest: +SKIP
    0
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from ragan._common import first_line
from ragan.errors import RaganError

__all__ = [
    "CONTAINER_WORKDIR",
    "CPU_BASE_IMAGE",
    "DEFAULT_IMAGE",
    "GPU_BASE_IMAGE",
    "build_image",
    "docker_client",
    "docker_host",
    "gpu_device_requests",
    "parse_environment",
    "parse_volume",
    "run_container",
]

DEFAULT_IMAGE = "ragan"
# The Dockerfile's default base; the CPU variant gives a smaller image for machines without a GPU.
GPU_BASE_IMAGE = "tensorflow/tensorflow:2.21.0-gpu"
CPU_BASE_IMAGE = "tensorflow/tensorflow:2.21.0"
# The image's working directory and declared volume.
CONTAINER_WORKDIR = "/work"

_DEFAULT_SOCKET = "unix:///var/run/docker.sock"
_GPU_HELP = "all, a count such as 2, device=0,1 (GPU indices or UUIDs), or none"


def docker_host() -> str:
    """Where the Docker SDK looks for the daemon: ``DOCKER_HOST``, else the local socket."""
    return os.environ.get("DOCKER_HOST") or _DEFAULT_SOCKET


def _short_reason(error: BaseException) -> str:
    """The operating system's words from a nested connection error ('Connection refused')."""
    text = str(error)
    for pattern in (r"\[Errno -?\d+\] ([^'\"()\]]+)", r"Error\(-?\d+, '([^']+)'\)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    return first_line(error)


def docker_client():
    """A ``docker.DockerClient`` connected to the daemon named by the environment.

    Returns:
        The client, after a successful ``ping``.

    Raises:
        RaganError: no daemon answers at :func:`docker_host` (not running, wrong ``DOCKER_HOST``,
            or no permission on the socket).

    Example:
        >>> client = docker_client()                                     # doctest: +SKIP
        >>> client.version()["Version"]                                  # doctest: +SKIP
        '27.3.1'
    """
    from docker.errors import DockerException

    import docker

    try:
        client = docker.from_env()
        client.ping()
    except (DockerException, OSError) as error:
        reason = _short_reason(error)
        hint = (
            "add yourself to the 'docker' group or run as root"
            if "ermission denied" in reason
            else "start it (e.g. 'sudo systemctl start docker') or point DOCKER_HOST at a running daemon"
        )
        raise RaganError(
            f"no Docker daemon reachable at {docker_host()} ({reason}); is Docker running? {hint}; "
            "without Docker, see docker/README.md for podman/buildah and Apptainer"
        ) from None
    return client


def gpu_device_requests(gpus: str | int | None) -> list:
    """The ``device_requests`` that ``docker run --gpus GPUS`` sends, as Docker SDK objects.

    Args:
        gpus: ``"all"``, a count (``2`` or ``"2"``), ``"device=0,1"`` (indices or UUIDs),
            or ``None``/``"none"`` for no GPU.

    Returns:
        A list with one ``docker.types.DeviceRequest`` for the NVIDIA driver, or an empty list.

    Raises:
        RaganError: an unrecognised value.

    Example:
        >>> [request["Count"] for request in gpu_device_requests("all")]
        [-1]
        >>> gpu_device_requests("device=0,2")[0]["DeviceIDs"]
        ['0', '2']
    """
    from docker.types import DeviceRequest

    text = "none" if gpus is None else str(gpus).strip().strip("\"'")
    if text in ("none", ""):
        return []
    capabilities = [["gpu"]]
    if text == "all":
        return [DeviceRequest(count=-1, capabilities=capabilities)]
    if text.isdigit() and int(text) > 0:
        return [DeviceRequest(count=int(text), capabilities=capabilities)]
    if text.startswith("device="):
        devices = [device.strip() for device in text[len("device=") :].split(",") if device.strip()]
        if devices:
            return [DeviceRequest(device_ids=devices, capabilities=capabilities)]
    raise RaganError(f"--gpus {gpus!r} is not understood; use {_GPU_HELP}")


def parse_volume(spec: str, base_dir: str | os.PathLike | None = None) -> tuple[str, dict[str, str]]:
    """One ``-v`` value, ``SOURCE:TARGET[:ro|rw]``, as the Docker SDK's ``volumes`` entry.

    SOURCE is a host path (``/data``, ``./runs``, ``~/x``, ``runs/x``), made absolute against
    ``base_dir`` (default: the current folder), or the name of a Docker volume (``ragan-runs``).

    Args:
        spec: the ``-v`` text.
        base_dir: folder that relative host paths are resolved against.

    Returns:
        ``(source, {"bind": target, "mode": mode})``.

    Raises:
        RaganError: a missing part, a relative TARGET or a mode other than ro/rw.

    Example:
        >>> parse_volume("/data/xray:/work/data:ro")
        ('/data/xray', {'bind': '/work/data', 'mode': 'ro'})
    """
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise RaganError(f"-v {spec!r}: expected HOST_PATH:CONTAINER_PATH or HOST_PATH:CONTAINER_PATH:ro")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise RaganError(f"-v {spec!r}: mode {mode!r} is not allowed; use ro or rw")
    if not target.startswith("/"):
        raise RaganError(f"-v {spec!r}: the container path {target!r} must be absolute, e.g. /work/data")
    is_path = source.startswith((".", "/", "~")) or "/" in source
    if is_path:
        path = Path(source).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or os.getcwd()) / path
        source = os.path.normpath(path)
    return source, {"bind": target, "mode": mode}


def parse_environment(items: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``-e KEY=VALUE`` (or ``-e KEY``, taking KEY from this environment, as ``docker run`` does).

    Example:
        >>> parse_environment(["MLFLOW_TRACKING_URI=http://mlflow:5000"])
        {'MLFLOW_TRACKING_URI': 'http://mlflow:5000'}
    """
    environ = os.environ if environ is None else environ
    result: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not key:
            raise RaganError(f"-e {item!r}: expected KEY=VALUE")
        if not separator:
            if key not in environ:
                raise RaganError(f"-e {key}: {key} is not set in this environment; give -e {key}=VALUE")
            value = environ[key]
        result[key] = value
    return result


def build_image(
    context: str | os.PathLike = ".",
    *,
    tag: str = DEFAULT_IMAGE,
    base_image: str | None = None,
    gpu: bool = True,
    build_args: Mapping[str, str] | None = None,
    pull: bool = False,
    client: Any = None,
    output: TextIO | None = None,
) -> str:
    """Build the image from ragan's ``Dockerfile``, streaming the build log.

    Args:
        context: the folder holding the Dockerfile (a clone of the ragan repository).
        tag: the image name, ``name[:tag]``.
        base_image: the ``BASE_IMAGE`` build argument; default :data:`GPU_BASE_IMAGE`, or
            :data:`CPU_BASE_IMAGE` when ``gpu=False``.
        gpu: choose the CUDA base (True) or the smaller CPU-only one (False) when
            ``base_image`` is not given.
        build_args: further build arguments, e.g. ``{"TENSORFLOW_EXTRAS": "and-cuda"}``.
        pull: pull a newer version of the base image first.
        client: a Docker SDK client (default: :func:`docker_client`).
        output: where the build log goes (default: standard output).

    Returns:
        The image's id (``sha256:...``), or ``tag`` when the daemon does not report one.

    Raises:
        RaganError: no Dockerfile in ``context``, no daemon, or a failed build (its last message).

    Example:
        >>> build_image(".", tag="ragan:cpu", gpu=False)                  # doctest: +SKIP
        'sha256:4a6e866dcb20...'
    """
    context_dir = Path(context).expanduser().resolve()
    if not (context_dir / "Dockerfile").is_file():
        raise RaganError(
            f"--context {str(context)!r}: no Dockerfile there; run 'ragan docker build' in a clone of the "
            "ragan repository or pass --context PATH_TO_CLONE"
        )
    output = sys.stdout if output is None else output
    arguments = {"BASE_IMAGE": base_image or (GPU_BASE_IMAGE if gpu else CPU_BASE_IMAGE)}
    arguments.update(build_args or {})
    client = client if client is not None else docker_client()
    image_id = None
    from docker.errors import APIError

    try:
        for chunk in client.api.build(
            path=str(context_dir), tag=tag, buildargs=arguments, pull=pull, rm=True, forcerm=True, decode=True
        ):
            if "error" in chunk:
                message = str(chunk.get("error", "")).strip().splitlines() or ["unknown error"]
                raise RaganError(f"docker build of {tag!r} failed: {message[-1]}")
            if "stream" in chunk:
                output.write(chunk["stream"])
            elif "status" in chunk:  # pulling the base image
                output.write(f"{chunk['status']} {chunk.get('progress', '')}".rstrip() + "\n")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = aux["ID"]
    except APIError as error:
        raise RaganError(f"docker build of {tag!r} failed: {_api_message(error)}") from None
    output.flush()
    return image_id or tag


def _api_message(error) -> str:
    explanation = getattr(error, "explanation", None) or str(error)
    return " ".join(str(explanation).split())


def run_container(
    command: Sequence[str],
    *,
    image: str = DEFAULT_IMAGE,
    gpus: str | int | None = "all",
    volumes: Sequence[str] | None = None,
    environment: Mapping[str, str] | None = None,
    user: str | None = None,
    entrypoint: str | Sequence[str] | None = None,
    workdir: str = CONTAINER_WORKDIR,
    client: Any = None,
    output: TextIO | None = None,
) -> int:
    """Run ``ragan COMMAND...`` in a container of ``image``, stream its output, return its exit status.

    Args:
        command: the arguments after ``ragan`` (the image's entrypoint), e.g.
            ``["train", "dcgan", "--data", "/work/prepared", "--out", "/work/runs/dcgan"]``.
        image: the image to run (built with :func:`build_image`).
        gpus: as ``docker run --gpus`` (see :func:`gpu_device_requests`); ``None`` for none.
        volumes: ``-v`` values (see :func:`parse_volume`); default ``["<current folder>:/work"]``,
            ``[]`` for none.
        environment: variables for the container, e.g. ``{"MLFLOW_TRACKING_URI": "http://mlflow:5000"}``.
        user: ``uid[:gid]`` or a name; default the calling user's ``uid:gid`` (on POSIX systems),
            so that files written to mounted folders belong to the caller.
        entrypoint: replaces the image's ``ragan`` entrypoint (e.g. ``"bash"``); default: keep it.
        workdir: the container's working directory.
        client: a Docker SDK client (default: :func:`docker_client`).
        output: where the container's output goes (default: standard output).

    Returns:
        The container's exit status (0 on success). The container is removed afterwards.

    Raises:
        RaganError: no daemon, no such image, GPUs requested where Docker has no GPU support,
            or a malformed option.

    Example:
        >>> run_container(["--version"], gpus=None, volumes=[])           # doctest: +SKIP
        ragan 0.1.0
        0
    """
    from docker.errors import APIError, ImageNotFound

    output = sys.stdout if output is None else output
    device_requests = gpu_device_requests(gpus)
    volume_specs = [f"{os.getcwd()}:{CONTAINER_WORKDIR}"] if volumes is None else list(volumes)
    bind_volumes = dict(parse_volume(spec) for spec in volume_specs)
    if user is None and hasattr(os, "getuid"):
        user = f"{os.getuid()}:{os.getgid()}"
    options: dict[str, Any] = dict(
        command=list(command),
        device_requests=device_requests,
        volumes=bind_volumes,
        environment=dict(environment or {}),
        working_dir=workdir,
        detach=True,
    )
    if user:
        options["user"] = user
    if entrypoint is not None:
        options["entrypoint"] = [entrypoint] if isinstance(entrypoint, str) else list(entrypoint)

    client = client if client is not None else docker_client()
    try:
        client.images.get(image)
    except ImageNotFound:
        raise RaganError(
            f"--image {image!r}: no such image on this Docker daemon; build it with "
            f"'ragan docker build --tag {image}' (or 'docker build -t {image} .')"
        ) from None
    try:
        container = client.containers.run(image, **options)
    except APIError as error:
        message = _api_message(error)
        if device_requests and ("device driver" in message or "gpu" in message.lower()):
            raise RaganError(
                f"--gpus {gpus}: Docker cannot give this container a GPU ({message}); install the NVIDIA "
                "driver and the NVIDIA Container Toolkit (docker/README.md), or use --gpus none"
            ) from None
        raise RaganError(f"docker run of {image!r} failed: {message}") from None

    try:
        for chunk in container.logs(stream=True, follow=True):
            output.write(chunk.decode("utf-8", errors="replace") if isinstance(chunk, bytes) else chunk)
            output.flush()
        status = container.wait().get("StatusCode", 1)
    except KeyboardInterrupt:
        # The container would otherwise go on training with nobody watching its output.
        container.stop(timeout=10)
        raise
    finally:
        container.remove(force=True)
    return int(status)
