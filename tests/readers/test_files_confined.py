"""`gpuadmit lint` follows a model repository named by a plan or manifest only inside the
folders being linted (the working directory, the paths given, `--files-root`): a pull-request
check must not read the runner's other files because a proposed plan names them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import SAMPLES, run_cli

REPO_MODELS = {"chat-llm", "embeddings", "guard", "reranker"}


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    """A project folder, and a Triton repository beside it (outside it)."""
    project, repo = tmp_path / "project", tmp_path / "elsewhere" / "models"
    project.mkdir()
    shutil.copytree(SAMPLES / "triton", repo)
    (repo / "gpuadmit.yaml").unlink()
    return project, repo


def _plan(project: Path, repository: str) -> Path:
    plan = project / "node.yaml"
    plan.write_text(
        "kind: ServingPlan\nmetadata: {name: node}\ngpus: [{id: gpu0, product: H100}]\n"
        f"triton: {{repository: '{repository}', args: [--model-repository=/models]}}\n"
    )
    return plan


def _lint(*args: str, cwd: Path) -> tuple[int, list[dict[str, object]]]:
    run = run_cli("lint", "--format", "json", *args, cwd=cwd)
    assert run.code in (0, 1), run.stdout + run.stderr
    return run.code, json.loads(run.stdout)["findings"]


def _models_judged(findings: list[dict[str, object]]) -> set[str]:
    return {str(f["model"]) for f in findings if f.get("model")}


def test_a_plan_naming_a_repository_outside_the_linted_folder_is_not_followed(tmp_path: Path) -> None:
    project, repo = _layout(tmp_path)
    _plan(project, str(repo))  # an absolute path out of the project
    code, findings = _lint("node.yaml", cwd=project)
    (unread,) = [f for f in findings if f["rule"] == "repository-read"]
    assert unread["severity"] == "error" and code == 1
    assert "outside the folders being linted" in str(unread["message"])
    assert str(repo) not in str(unread["message"])
    assert not _models_judged(findings) & REPO_MODELS  # nothing of the repository was read


def test_a_relative_path_climbing_out_is_not_followed_either(tmp_path: Path) -> None:
    project, _ = _layout(tmp_path)
    _plan(project, "../elsewhere/models")
    _, findings = _lint("node.yaml", cwd=project)
    assert [f["rule"] for f in findings if f["rule"] == "repository-read"] == ["repository-read"]


def test_a_link_out_of_the_linted_folder_is_outside(tmp_path: Path) -> None:
    project, repo = _layout(tmp_path)
    (project / "models").symlink_to(repo, target_is_directory=True)
    _plan(project, "models")
    _, findings = _lint("node.yaml", cwd=project)
    assert any(f["rule"] == "repository-read" and "outside" in str(f["message"]) for f in findings)


def test_files_root_lets_the_repository_be_read(tmp_path: Path) -> None:
    project, repo = _layout(tmp_path)
    _plan(project, str(repo))
    _, findings = _lint("node.yaml", "--files-root", str(repo.parent), cwd=project)
    assert not [f for f in findings if f["rule"] == "repository-read"]
    assert _models_judged(findings) & REPO_MODELS  # the repository's models were judged


def test_a_repository_inside_the_project_is_still_read(tmp_path: Path) -> None:
    project, repo = _layout(tmp_path)
    shutil.move(str(repo), project / "models")
    _plan(project, "models")
    _, findings = _lint("node.yaml", cwd=project)
    assert not [f for f in findings if f["rule"] == "repository-read"]
    assert _models_judged(findings) & REPO_MODELS


def test_a_path_given_on_the_command_line_is_a_folder_being_linted(tmp_path: Path) -> None:
    """Run from elsewhere, naming the project: its own folder counts."""
    project, repo = _layout(tmp_path)
    shutil.move(str(repo), project / "models")
    _plan(project, "models")
    _, findings = _lint(str(project / "node.yaml"), cwd=tmp_path / "elsewhere")
    assert _models_judged(findings) & REPO_MODELS


def _deployment(args: str, annotations: str = "{}") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: triton, namespace: prod, annotations: {annotations}}}
spec:
  replicas: 1
  template:
    spec:
      nodeSelector: {{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}}
      containers:
        - name: server
          image: nvcr.io/nvidia/tritonserver:25.01-py3
          args: {args}
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
"""


def test_a_model_repository_flag_outside_is_a_path_in_the_container_not_read(tmp_path: Path) -> None:
    """`--model-repository=/models` names a folder inside the image; one that happens to exist
    on the machine running the lint is not read."""
    project, repo = _layout(tmp_path)
    (project / "triton.yaml").write_text(_deployment(f"[tritonserver, --model-repository={repo}]"))
    code, findings = _lint("triton.yaml", cwd=project)
    (unread,) = [f for f in findings if f["rule"] == "repository-read"]
    assert unread["severity"] == "warning"
    assert "no model repository is there inside the folders being linted" in str(unread["message"])
    assert not _models_judged(findings) & REPO_MODELS


def test_a_repository_annotation_outside_is_an_error_not_a_read(tmp_path: Path) -> None:
    project, repo = _layout(tmp_path)
    annotations = f"{{gpuadmit.dev/triton-repository: '{repo}'}}"
    (project / "triton.yaml").write_text(_deployment("[tritonserver, --model-repository=/models]", annotations))
    code, findings = _lint("triton.yaml", cwd=project)
    (unread,) = [f for f in findings if f["rule"] == "repository-read"]
    assert unread["severity"] == "error" and code == 1
    assert not _models_judged(findings) & REPO_MODELS


# -- links inside what is read -------------------------------------------------------------


def test_a_linked_model_folder_in_a_repository_is_not_read(tmp_path: Path) -> None:
    """A pull request may add `models/evil -> /elsewhere`: the link is reported, never followed."""
    project, repo = _layout(tmp_path)
    shutil.move(str(repo), project / "models")
    outside = tmp_path / "secret-model"
    shutil.copytree(project / "models" / "guard", outside)
    (project / "models" / "evil").symlink_to(outside, target_is_directory=True)
    _, findings = _lint("models", cwd=project)
    (unread,) = [f for f in findings if f["rule"] == "repository-read"]
    assert unread["severity"] == "error" and "link out of the model repository" in str(unread["message"])
    assert "evil" not in _models_judged(findings) - {unread.get("model")}
    assert _models_judged(findings) & REPO_MODELS  # the rest of the repository is judged


def test_a_linked_config_is_not_read_nor_quoted(tmp_path: Path) -> None:
    project, repo = _layout(tmp_path)
    shutil.move(str(repo), project / "models")
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET_TOKEN: hunter2\n", encoding="utf-8")
    (project / "models" / "leak").mkdir()
    (project / "models" / "leak" / "config.pbtxt").symlink_to(secret)
    run = run_cli("lint", "--format", "json", "models", cwd=project)
    assert "SECRET_TOKEN" not in run.stdout + run.stderr and "hunter2" not in run.stdout + run.stderr
    findings = json.loads(run.stdout)["findings"]
    assert any(f["rule"] == "repository-read" and f.get("model") == "leak" for f in findings)


def test_a_linked_file_in_a_linted_folder_is_not_read(tmp_path: Path) -> None:
    project, _ = _layout(tmp_path)
    secret = tmp_path / "creds.yaml"
    secret.write_text("kind: ServingPlan\nmetadata: {name: creds}\npassword: hunter2\n", encoding="utf-8")
    (project / "c.yaml").symlink_to(secret)
    run = run_cli("lint", "--format", "json", ".", cwd=project)
    assert "hunter2" not in run.stdout + run.stderr and "password" not in run.stdout + run.stderr
    (unread,) = [f for f in json.loads(run.stdout)["findings"] if f["rule"] == "repository-read"]
    assert "link out of the folders being linted" in str(unread["message"])
