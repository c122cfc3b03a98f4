"""``ragan docker build|run``: build and run ragan's container image through the Docker SDK.

Thin wrappers of :func:`ragan.docker_tools.build_image` and :func:`ragan.docker_tools.run_container`;
everything after ``--`` in ``ragan docker run`` goes to ``ragan`` inside the container.
"""

from __future__ import annotations

import argparse

BUILD_DESCRIPTION = (
    "Build the ragan image from the Dockerfile in --context (a clone of the ragan repository): "
    "TensorFlow's official CUDA image as the base (--gpu, default), its CPU-only image (--cpu), or any "
    "--base-image with Python 3.11. Needs a running Docker daemon (DOCKER_HOST or the local socket)."
)
RUN_DESCRIPTION = (
    "Run 'ragan ARGS...' in a container of --image, with all GPUs (--gpus), the current folder mounted "
    "at /work unless -v is given, and your own uid so that files written to mounted folders are yours. "
    "Example: ragan docker run -- train dcgan --data /work/prepared --out /work/runs/dcgan"
)


def register(subparsers):
    parser = subparsers.add_parser(
        "docker",
        help="Build or run ragan's CUDA container image (Docker SDK).",
        description="Build (ragan docker build) or run (ragan docker run -- ARGS...) ragan's container image "
        "through the Docker daemon. Without Docker, see docker/README.md (podman, buildah, Apptainer).",
    )
    actions = parser.add_subparsers(dest="docker_command", metavar="ACTION", parser_class=type(parser))
    actions.required = True

    build = actions.add_parser(
        "build", help="build the image from the repository's Dockerfile", description=BUILD_DESCRIPTION
    )
    build.add_argument("--tag", default=None, help="image name[:tag] (default: ragan)")
    build.add_argument("--context", default=".", help="folder with ragan's Dockerfile (default: the current folder)")
    build.add_argument(
        "--base-image",
        default=None,
        help="BASE_IMAGE build argument (default: tensorflow/tensorflow:2.21.0-gpu, "
        "or tensorflow/tensorflow:2.21.0 with --cpu)",
    )
    device = build.add_mutually_exclusive_group()
    device.add_argument("--gpu", dest="gpu", action="store_true", default=True, help="CUDA base image (default)")
    device.add_argument("--cpu", dest="gpu", action="store_false", help="smaller CPU-only base image")
    build.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="further build argument, e.g. TENSORFLOW_EXTRAS=and-cuda (repeatable)",
    )
    build.add_argument("--pull", action="store_true", help="pull a newer base image first")
    build.set_defaults(func=run_build)

    run = actions.add_parser("run", help="run 'ragan ARGS...' in a container", description=RUN_DESCRIPTION)
    run.add_argument("--image", default=None, help="image to run (default: ragan)")
    run.add_argument(
        "--gpus", default="all", help="GPUs as in 'docker run --gpus': all (default), a count, device=0,1, or none"
    )
    run.add_argument(
        "-v",
        "--volume",
        dest="volumes",
        action="append",
        default=None,
        metavar="HOST:CONTAINER[:ro]",
        help="bind a host folder (a path with a /, e.g. ./data) or a named Docker volume into the container "
        "(repeatable; "
        "default: the current folder at /work)",
    )
    run.add_argument(
        "-e",
        "--env",
        dest="environment",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="environment variable for the container, e.g. MLFLOW_TRACKING_URI=http://mlflow:5000",
    )
    run.add_argument("--user", default=None, help="uid[:gid] or name inside the container (default: your own uid:gid)")
    run.add_argument("--entrypoint", default=None, help="replace the 'ragan' entrypoint, e.g. bash")
    run.add_argument(
        "args", nargs=argparse.REMAINDER, metavar="-- ARGS", help="arguments for ragan inside the container, after --"
    )
    run.set_defaults(func=run_run)
    return parser


def _build_args(items: list[str]) -> dict[str, str]:
    from ragan.errors import RaganError

    result = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not key or not separator:
            raise RaganError(f"--build-arg {item!r}: expected KEY=VALUE, e.g. TENSORFLOW_EXTRAS=and-cuda")
        result[key] = value
    return result


def run_build(args) -> int:
    from ragan.docker_tools import DEFAULT_IMAGE, build_image

    tag = args.tag or DEFAULT_IMAGE
    image_id = build_image(
        args.context,
        tag=tag,
        base_image=args.base_image,
        gpu=args.gpu,
        build_args=_build_args(args.build_arg),
        pull=args.pull,
    )
    print(f"built {tag} ({image_id})")
    return 0


def run_run(args) -> int:
    from ragan.docker_tools import DEFAULT_IMAGE, parse_environment, run_container
    from ragan.errors import RaganError

    command = list(args.args)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise RaganError(
            "no ragan arguments given; e.g. 'ragan docker run -- train dcgan --data /work/prepared "
            "--out /work/runs/dcgan' (everything after -- runs inside the container)"
        )
    return run_container(
        command,
        image=args.image or DEFAULT_IMAGE,
        gpus=args.gpus,
        volumes=args.volumes,
        environment=parse_environment(args.environment),
        user=args.user,
        entrypoint=args.entrypoint,
    )
