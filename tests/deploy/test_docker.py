"""docker/: Docker cannot run here, so check that the images and the compose file refer to what exists.

Each Dockerfile's COPY sources and the repository files its RUN, CMD, ENTRYPOINT and
HEALTHCHECK instructions name must exist; the compose file must be accepted by
``docker-compose config`` and point at existing Dockerfiles, env file and mounted folders.
"""

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
DOCKERFILES = sorted(DOCKER_DIR.glob("Dockerfile.*"))
#: The compose file reads its env file from this variable; the example stands in for the real .env.
COMPOSE_VARIABLES = {"RADASSIST_ENV_FILE": "env.example"}
#: Words in commands that name a file of the repository (relative to WORKDIR /app).
REPO_FILE = re.compile(r"^(?:/app/)?((?:[\w.-]+/)*[\w.-]+\.(?:sh|py|txt|cfg|conf|ya?ml))$")
#: ``package.module:attribute`` (gunicorn) and ``-A module`` (celery) name Python modules.
WSGI_TARGET = re.compile(r"^([A-Za-z_][\w.]*):[A-Za-z_]\w*$")


def instructions(dockerfile):
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def words(arguments):
    arguments = arguments.strip()
    if arguments.startswith("["):
        return json.loads(arguments)
    return shlex.split(arguments)


def referenced_repo_files(command_words):
    for index, word in enumerate(command_words):
        for part in re.split(r"[;&|]+", word):
            match = REPO_FILE.match(part)
            if match:
                yield match.group(1)
            target = WSGI_TARGET.match(part)
            if target:
                yield target.group(1).replace(".", "/") + ".py"
        if index and command_words[index - 1] == "-A":
            yield word.replace(".", "/") + ".py"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_copies_and_runs_only_what_the_repository_has(dockerfile):
    missing, checked = [], 0
    for instruction, arguments in instructions(dockerfile):
        if instruction in ("COPY", "ADD"):
            if any(word.startswith("--from=") for word in words(arguments)):
                continue  # copies from an earlier build stage, not from the repository
            sources = [word for word in words(arguments) if not word.startswith("--")][:-1]
            assert sources, f"{instruction} {arguments} names no source"
            for source in sources:
                checked += 1
                if not (REPO_ROOT / source).exists():
                    missing.append(f"{instruction} {source}")
        elif instruction in ("RUN", "CMD", "ENTRYPOINT", "HEALTHCHECK"):
            command = arguments.split("CMD", 1)[1] if instruction == "HEALTHCHECK" else arguments
            for path in referenced_repo_files(words(command)):
                checked += 1
                if not (REPO_ROOT / path).exists():
                    missing.append(f"{instruction} {path}")

    assert missing == []
    assert checked >= 3, "the parser found almost nothing to check: has the Dockerfile's shape changed?"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_entrypoint_scripts_are_executable_shell(dockerfile):
    entrypoints = [
        words(arguments) for instruction, arguments in instructions(dockerfile) if instruction == "ENTRYPOINT"
    ]
    assert entrypoints, f"{dockerfile.name} has no ENTRYPOINT"
    script = REPO_ROOT / entrypoints[-1][0]

    assert script.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0


def test_gpu_image_serves_only_the_gpu_queue_one_process_at_a_time():
    environment = dict(
        re.findall(r"(RADASSIST_WORKER_\w+)=(\S+)", (DOCKER_DIR / "Dockerfile.gpu").read_text().replace("\\", ""))
    )

    assert environment == {"RADASSIST_WORKER_QUEUES": "gpu", "RADASSIST_WORKER_CONCURRENCY": "1"}
    assert "--prefetch-multiplier 1" in (DOCKER_DIR / "entrypoint-worker.sh").read_text()


def substitute(value):
    return re.sub(
        r"\$\{(\w+)(?::-([^}]*))?\}", lambda match: COMPOSE_VARIABLES.get(match[1], match[2] or ""), str(value)
    )


def compose_services():
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def test_compose_services_refer_to_existing_dockerfiles_env_file_and_folders():
    services = compose_services()
    missing = []
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DOCKER_DIR / build["context"]).resolve()
            if not (context / build["dockerfile"]).is_file():
                missing.append(f"{name}: {build['dockerfile']}")
        for env_file in (
            service.get("env_file", []) if isinstance(service.get("env_file"), list) else [service.get("env_file")]
        ):
            if env_file and not (DOCKER_DIR / substitute(env_file)).is_file():
                missing.append(f"{name}: env file {env_file}")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(".") and not (DOCKER_DIR / source).exists():
                missing.append(f"{name}: mount {source}")

    assert missing == []
    assert {"postgres", "redis", "minio", "create-buckets", "migrate", "mlflow", "web"} <= services.keys()
    assert {"worker-ingest", "worker-reports", "worker-gpu"} <= services.keys()


def test_compose_reserves_a_gpu_and_keeps_redis_durable():
    services = compose_services()
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]

    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "minio", "mlflow", "web"))


def test_compose_file_is_accepted_by_docker_compose():
    executable = shutil.which("docker-compose")
    if executable is None:
        pytest.skip("Debian's docker-compose is not installed: apt-get install docker-compose (make test does it)")
    result = subprocess.run(
        [executable, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        env={**os.environ, **COMPOSE_VARIABLES},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
