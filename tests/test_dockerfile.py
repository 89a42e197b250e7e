"""The Dockerfile builds the image samples/deploy/ runs: its user, entry point, port and
version agree with the manifests, and it runs on a read-only root filesystem.

No container engine runs here, so the image is checked by reading the Dockerfile, and the
read-only behaviour by running gpuadmit with the image's environment and no writable home.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT, SAMPLES

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of every stage, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the last stage."""
    instructions = _instructions()
    last_from = max(n for n, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def _instruction(name: str) -> str:
    found = [rest for word, rest in _final_stage() if word == name]
    assert found, f"no {name} in the final stage"
    return found[-1]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _final_stage():
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _deployment() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SAMPLES / "deploy" / "04-deployment.yaml").read_text(encoding="utf-8"))
    return data


def _container() -> dict[str, Any]:
    (container,) = _deployment()["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


def test_the_image_user_is_the_one_the_deployment_runs_as() -> None:
    pod = _deployment()["spec"]["template"]["spec"]["securityContext"]
    user, _, group = _instruction("USER").partition(":")
    assert (int(user), int(group)) == (pod["runAsUser"], pod["runAsGroup"]) == (65532, 65532)
    assert pod["runAsNonRoot"] is True


def test_the_entry_point_is_gpuadmit_and_the_deployment_args_are_a_valid_serve_command() -> None:
    assert json.loads(_instruction("ENTRYPOINT")) == ["gpuadmit"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "gpuadmit" in scripts
    args = _container()["args"]
    assert args[0] == "serve"
    from policy.cli import build_parser

    parsed = build_parser("serve").parse_args(args)
    assert parsed.command == "serve" and parsed.port == 8443


def test_the_image_tag_port_and_label_agree_with_the_package_and_the_manifests() -> None:
    container = _container()
    assert container["image"] == f"gpuadmit:{_version()}"
    assert f'org.opencontainers.image.version="{_version()}"' in _instruction("LABEL")
    ports = [p["containerPort"] for p in container["ports"]]
    assert [int(p) for p in _instruction("EXPOSE").split()] == ports


def test_the_image_writes_only_where_the_deployment_mounts_a_volume() -> None:
    container = _container()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = _env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert any(Path(env["GPUADMIT_CACHE_DIR"]).is_relative_to(path) for path in writable), (env, writable)


def test_no_build_tools_are_installed_in_the_final_stage() -> None:
    final = " ".join(rest for _, rest in _final_stage()).lower()
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in final, tool
    assert "pip uninstall" in final


def test_everything_the_build_copies_exists() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_gpuadmit_runs_with_the_image_environment_and_no_writable_home(tmp_path: Path) -> None:
    """As in the image: no home directory, no bytecode written, the rule cache under /tmp."""
    cache = tmp_path / "tmp" / "gpuadmit"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME",)},
        "HOME": "/nonexistent",
        "PYTHONDONTWRITEBYTECODE": "1",
        "GPUADMIT_CACHE_DIR": str(cache),
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.run(
        [sys.executable, "-m", "policy.cli", "lint", str(SAMPLES / "seed-demo-safe.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert not Path("/nonexistent").exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(cache)] == []


def test_the_image_holds_the_kubernetes_client_the_deployment_args_need() -> None:
    """The sample Deployment judges with the cluster's neighbours (`--cluster kube`), which
    needs the `kube` extra: an image without it would fail every replica at start."""
    args = _container()["args"]
    assert "--cluster=kube" in args
    build = "\n".join(rest for word, rest in _instructions() if word == "RUN")
    assert "[kube]" in build and "import lightkube" in build
