"""The real Dockerfile, built and run: without a Docker daemon (buildah), and with one where there is.

Without a daemon (CI): a Debian 12 + Python 3.11 base image is made locally (``debootstrap``, then
``podman import``), the repository's Dockerfile is built on it with
``buildah bud --pull=never --isolation chroot`` (its ``BASE_IMAGE`` build argument) from a wheel
folder downloaded on the host (no index access inside the build), and ``buildah run`` executes
``ragan --version`` and a tiny ``ragan prepare`` + ``ragan train`` in the result. Only the base differs
from the published image (TensorFlow's CUDA image), and the Dockerfile treats both alike.

The tools: where buildah, podman or debootstrap is missing, the tests skip with the reason, unless
``CI`` is set and they run as root on a Debian-like system: then they ``apt-get install`` them.
The base image, its root file system and the wheels are cached in ``~/.cache/ragan-ci`` (or
``RAGAN_CI_CACHE``), so a second run on the same machine only builds the ragan layers. The time
each phase took is written to ``image-test-timings.json`` there.

With a Docker daemon (``DOCKER_HOST`` or the local socket), ``ragan.docker_tools`` builds the image on
``RAGAN_TEST_BASE_IMAGE`` (default: TensorFlow's CPU image, which the daemon must be able to pull)
and runs the same commands; without one that test skips, saying so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragan import __version__
from ragan.errors import RaganError
from tests.system_tools import ensure_system_tools

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("RAGAN_CI_CACHE") or Path.home() / ".cache" / "ragan-ci")
DEBIAN_SUITE = "bookworm"  # Debian 12: python3 is 3.11, the version requirements.txt is pinned for
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
TOOL_PACKAGES = {"buildah": "buildah", "podman": "podman", "debootstrap": "debootstrap"}
IMAGE_TAG = "localhost/ragan:ci-test"
# Slow machines: debootstrap (~3 min), wheel download (~1.5 min) and build (~5 min) from nothing.
IMAGE_TIMEOUT = 2400

# With ``pytest -n 2`` these tests must share one worker (``--dist loadfile``, as the README's test
# command has it): on two, both would build the image on the same tag and use one working container.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(IMAGE_TIMEOUT)]

TIMINGS: dict[str, float] = {}


# A container runtime step can fail for a moment on a busy kernel: buildah's chroot isolation copies
# itself into a sealed memfd, and sealing returns EBUSY while another process still maps its pages
# (CI, 2026-11-30: "Close_Fd sealing memfd copy: Device or resource busy" at one RUN step of a build
# whose earlier RUN steps had passed). Such a failure says nothing about the image; run it again.
TRANSIENT_RUNTIME_ERRORS = re.compile(r"sealing memfd|memfd copy: Device or resource busy")
ATTEMPTS = 3


def _run(command, *, timeout, check=True, **kwargs) -> subprocess.CompletedProcess:
    for attempt in range(1, ATTEMPTS + 1):
        result = subprocess.run(
            [str(part) for part in command], capture_output=True, text=True, timeout=timeout, **kwargs
        )
        transient = result.returncode != 0 and TRANSIENT_RUNTIME_ERRORS.search(result.stdout + result.stderr)
        if not transient or attempt == ATTEMPTS:
            break
        print(f"{command[0]} {command[1]}: transient runtime error, attempt {attempt + 1} of {ATTEMPTS}")
        time.sleep(5)
    if check and result.returncode != 0:
        tail = (result.stdout[-3000:] + "\n" + result.stderr[-3000:]).strip()
        pytest.fail(f"{' '.join(map(str, command))[:300]} exited with {result.returncode}:\n{tail}")
    return result


class _Phase:
    """Times one phase into TIMINGS and the cache's timing file."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.started = time.monotonic()

    def __exit__(self, *exc_info):
        TIMINGS[self.name] = round(time.monotonic() - self.started, 1)
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "image-test-timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


def _debian_mirror() -> str:
    """The Debian archive apt uses here (CI machines reach only that one), else deb.debian.org."""
    if os.environ.get("RAGAN_CI_DEBIAN_MIRROR"):
        return os.environ["RAGAN_CI_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        try:
            text = source.read_text()
        except OSError:
            continue
        for uri in re.findall(r"(https?://\S+?/debian)/?(?=\s|$)", text):
            return uri
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="session")
def container_tools() -> None:
    """buildah, podman and debootstrap, installed with apt-get in CI when missing."""
    if os.geteuid() != 0:
        pytest.skip("building the image without a daemon needs root (debootstrap, buildah --isolation chroot)")
    with _Phase("apt-get install tools"):
        ensure_system_tools(TOOL_PACKAGES)


def _image_exists(name: str) -> bool:
    return _run(["buildah", "inspect", "--type", "image", name], timeout=120, check=False).returncode == 0


@pytest.fixture(scope="session")
def debian_base_image(container_tools) -> str:
    """``localhost/ragan-ci-base:bookworm-<recipe>``: minimal Debian with Python 3.11 and venv."""
    recipe = hashlib.sha256(f"{DEBIAN_SUITE} {' '.join(DEBIAN_PACKAGES)}".encode()).hexdigest()[:12]
    tag = f"localhost/ragan-ci-base:{DEBIAN_SUITE}-{recipe}"
    if _image_exists(tag):
        return tag
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"rootfs-{DEBIAN_SUITE}-{recipe}.tar"
    if not tarball.exists():
        rootfs = CACHE / f"rootfs-{DEBIAN_SUITE}-{recipe}.partial"
        shutil.rmtree(rootfs, ignore_errors=True)
        with _Phase("debootstrap"):
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(DEBIAN_PACKAGES)}",
                    DEBIAN_SUITE,
                    rootfs,
                    _debian_mirror(),
                ],
                timeout=1500,
            )
            # Package caches and lists are of no use in an image.
            for leftover in [
                *(rootfs / "var/cache/apt/archives").glob("*.deb"),
                *(rootfs / "var/lib/apt/lists").glob("*_*"),
            ]:
                leftover.unlink()
            partial_tar = tarball.with_suffix(".tar.partial")
            _run(["tar", "-C", rootfs, "-cf", partial_tar, "."], timeout=600)
            partial_tar.rename(tarball)
            shutil.rmtree(rootfs)
    with _Phase("podman import"):
        _run(["podman", "import", tarball, tag], timeout=600)
    return tag


@pytest.fixture(scope="session")
def wheel_folder() -> Path:
    """Every wheel requirements.txt needs (plus setuptools to build ragan), downloaded on the host."""
    requirements = (REPO / "requirements.txt").read_bytes()
    stamp_text = hashlib.sha256(requirements + sys.version.encode()).hexdigest()
    folder = CACHE / "wheels"
    stamp = folder / ".requirements-sha256"
    if stamp.exists() and stamp.read_text() == stamp_text:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with _Phase("pip download"):
        # Same interpreter version as the base image's python3 (3.11), so the same wheels fit.
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                REPO / "requirements.txt",
                "setuptools",
                "wheel",
                "-d",
                folder,
            ],
            timeout=1500,
        )
    stamp.write_text(stamp_text)
    return folder


@pytest.fixture(scope="session")
def built_image(debian_base_image, wheel_folder):
    """The repository's Dockerfile built with buildah on the Debian base, offline."""
    with _Phase("buildah bud"):
        _run(
            [
                "buildah",
                "bud",
                "--pull=never",
                "--isolation",
                "chroot",
                "--layers",
                "--build-arg",
                f"BASE_IMAGE={debian_base_image}",
                "--build-arg",
                "PIP_FIND_LINKS=/wheels",
                "--build-arg",
                "PIP_NO_INDEX=1",
                "--volume",
                f"{wheel_folder}:/wheels:ro",
                "-f",
                REPO / "Dockerfile",
                "-t",
                IMAGE_TAG,
                REPO,
            ],
            timeout=IMAGE_TIMEOUT,
        )
    yield IMAGE_TAG
    _run(["buildah", "rmi", "--force", IMAGE_TAG], timeout=300, check=False)


@pytest.fixture(scope="session")
def image_container(built_image):
    """A working container of the built image for ``buildah run``."""
    name = _run(["buildah", "from", "--pull=never", built_image], timeout=300).stdout.strip().splitlines()[-1]
    # `buildah run` mounts the image's own VOLUME over a --volume at the same path (Docker lets the
    # user's -v win), so the working container forgets the declaration; the image keeps it (checked above).
    _run(["buildah", "config", "--volume", "/work-", name], timeout=120)
    yield name
    _run(["buildah", "rm", name], timeout=300, check=False)


def buildah_run(container, *command, user=None, volumes=(), timeout=900, check=True):
    options = ["--isolation", "chroot"]
    if user:
        options += ["--user", user]
    for volume in volumes:
        options += ["--volume", volume]
    return _run(["buildah", "run", *options, container, "--", *command], timeout=timeout, check=check)


def _pins() -> dict[str, str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


def test_image_config_entrypoint_user_workdir_volume(built_image):
    info = json.loads(_run(["buildah", "inspect", "--type", "image", built_image], timeout=120).stdout)
    config = info["OCIv1"]["config"]
    assert config["Entrypoint"] == ["ragan"]
    assert config["Cmd"] == ["--help"]
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/work"
    assert list(config["Volumes"]) == ["/work"]
    environment = dict(item.split("=", 1) for item in config["Env"])
    assert environment["PATH"].startswith("/opt/ragan/bin:")
    # Build arguments for the offline build must not leak into the image.
    assert not any(key.startswith(("PIP_FIND_LINKS", "PIP_NO_INDEX")) for key in environment)


def test_ragan_and_pinned_tensorflow_in_the_image(image_container):
    assert buildah_run(image_container, "ragan", "--version").stdout.strip() == f"ragan {__version__}"
    versions = buildah_run(
        image_container,
        "python",
        "-c",
        "import ragan, tensorflow, keras; print(tensorflow.__version__, keras.__version__)",
    )
    pins = _pins()
    assert versions.stdout.split() == [pins["tensorflow"], pins["keras"]]


def test_default_user_is_uid_1000_and_owns_work(image_container):
    assert buildah_run(image_container, "id", "-u").stdout.strip() == "1000"
    buildah_run(image_container, "touch", "/work/written-by-default-user")


def test_tiny_prepare_and_train_in_a_mounted_folder_as_any_uid(image_container, tmp_path):
    """As ``docker run --user UID -v "$PWD:/work"`` or Apptainer would: an arbitrary uid, a host folder."""
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    mount = [f"{work}:/work"]
    user = "4242:4242"
    buildah_run(
        image_container,
        "ragan",
        "prepare",
        "sample:pneumoniamnist",
        "--out",
        "/work/prepared",
        "--image-size",
        "16",
        "--workers",
        "0",
        "--quiet",
        user=user,
        volumes=mount,
    )
    buildah_run(
        image_container,
        "ragan",
        "train",
        "dcgan",
        "--data",
        "/work/prepared",
        "--out",
        "/work/runs/dcgan",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--log-every",
        "1",
        "--quiet",
        user=user,
        volumes=mount,
    )

    manifest = json.loads((work / "prepared" / "manifest.json").read_text())
    assert manifest  # a complete prepared dataset appeared on the host
    run = work / "runs" / "dcgan"
    for produced in ("model.keras", "config.json", "mlflow.db"):
        assert (run / produced).is_file(), f"{produced} missing from {sorted(p.name for p in run.iterdir())}"
    # The MLflow store defaults to the run folder, i.e. the mounted volume, and the files are the caller's.
    assert (run / "model.keras").stat().st_uid == 4242


def test_docker_daemon_builds_and_runs_the_image(tmp_path):
    """With a reachable Docker daemon: the same through ragan.docker_tools (the Docker SDK)."""
    from ragan import docker_tools

    try:
        client = docker_tools.docker_client()
    except RaganError as error:
        pytest.skip(str(error))
    tag = "ragan:pytest"
    base = os.environ.get("RAGAN_TEST_BASE_IMAGE", docker_tools.CPU_BASE_IMAGE)
    docker_tools.build_image(REPO, tag=tag, base_image=base, client=client, output=io.StringIO())
    output = io.StringIO()
    assert (
        docker_tools.run_container(["--version"], image=tag, gpus=None, volumes=[], client=client, output=output) == 0
    )
    assert output.getvalue().strip().splitlines()[-1] == f"ragan {__version__}"
    work = tmp_path / "work"
    work.mkdir()
    for command in (
        [
            "prepare",
            "sample:pneumoniamnist",
            "--out",
            "/work/prepared",
            "--image-size",
            "16",
            "--workers",
            "0",
            "--quiet",
        ],
        [
            "train",
            "dcgan",
            "--data",
            "/work/prepared",
            "--out",
            "/work/runs/dcgan",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--quiet",
        ],
    ):
        status = docker_tools.run_container(
            command, image=tag, gpus=None, volumes=[f"{work}:/work"], client=client, output=io.StringIO()
        )
        assert status == 0, command
    assert (work / "runs" / "dcgan" / "mlflow.db").is_file()
    assert (work / "runs" / "dcgan" / "model.keras").stat().st_uid == os.getuid()


def test_a_transient_runtime_error_is_retried_and_a_real_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    counter = tmp_path / "attempts"
    # Fails like buildah's chroot set-up on the first call, then succeeds.
    flaky = (
        f'echo x >> {counter}; [ "$(wc -l < {counter})" -ge 2 ] && exit 0; '
        'echo "Close_Fd sealing memfd copy: Device or resource busy" >&2; exit 1'
    )
    assert _run(["sh", "-c", flaky], timeout=60).returncode == 0
    assert len(counter.read_text().splitlines()) == 2

    counter.unlink()
    broken = f'echo x >> {counter}; echo "No such file or directory" >&2; exit 1'
    assert _run(["sh", "-c", broken], timeout=60, check=False).returncode == 1
    assert len(counter.read_text().splitlines()) == 1
