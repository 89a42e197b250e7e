"""The hostile-input catalogue: each malformed or oversized input, as a user meets it.

Every case goes through the real CLI (`gpuadmit lint` in a subprocess) and, where cheap,
through the library too. What each case must show:

- unusable input exits 2; input that is merely unusual (a BOM, CRLF) lints normally;
- the error is one line that names the file, short enough to read;
- no traceback, ever;
- bounded time and memory: subprocesses have generous timeouts (never a wall-clock
  assertion), and the big inputs run under an address-space ceiling, so an input that
  makes gpuadmit balloon fails the test instead of the machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, Run, run_cli

#: What one `gpuadmit lint` may use on any input under the file-size limit: a pre-commit
#: hook in a small CI runner and a webhook pod with a memory limit must not be killed
#: by one file. The CLI itself needs about 0.6 GiB of address space.
MEMORY_CEILING = 3 * 2**29  # 1.5 GiB of address space
#: An error line is read by a person, and GitHub annotations and SARIF carry it.
MAX_LINE_CHARS = 1000
DEEP = 10_000

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")


# --- helpers -----------------------------------------------------------------------------


def lint(*args: str) -> Run:
    return run_cli("lint", *args)


def lint_with_ceiling(*args: str, memory: int = MEMORY_CEILING) -> Run:
    """`gpuadmit lint ARGS` with its address space capped at `memory` bytes."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    proc = subprocess.run(
        [sys.executable, "-m", "policy.cli", "lint", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap,
        # A native extension that runs out of memory aborts; with backtraces on it can hang instead.
        env={**os.environ, "PYTHONPATH": str(ROOT), "RUST_BACKTRACE": "0"},
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def no_traceback(run: Run) -> None:
    both = run.stdout + run.stderr
    assert "Traceback" not in both, both[-3000:]
    assert "memory allocation" not in both, both[-3000:]


def assert_refused(run: Run, file: Path, *messages: str) -> str:
    """Exit 2, no traceback, exactly one readable schema line naming `file`; returns it."""
    no_traceback(run)
    assert run.code == 2, (run.code, run.stdout[-2000:], run.stderr[-2000:])
    lines = [ln for ln in run.stdout.splitlines() if " schema " in ln and str(file) in ln]
    assert len(lines) == 1, run.stdout[-3000:]
    (line,) = lines
    assert len(line) - len(str(file)) <= MAX_LINE_CHARS, f"{len(line)} characters: {line[:300]}..."
    for message in messages:
        assert message in line, line
    return line


def assert_refused_alone(run: Run, file: Path, *messages: str) -> str:
    """As `assert_refused`, for a plan file: the whole output is that one line."""
    line = assert_refused(run, file, *messages)
    assert [ln for ln in run.stdout.splitlines() if ln.strip()] == [line]
    return line


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def model_repo(tmp_path: Path, config: bytes | str, extra: dict[str, bytes | str] | None = None) -> Path:
    """A Triton repository with one model folder `m` holding `config` as config.pbtxt."""
    repo = tmp_path / "repo"
    write(repo / "m" / "config.pbtxt", config)
    for rel, content in (extra or {}).items():
        write(repo / "m" / rel, content)
    return repo


def json_findings(*args: str) -> tuple[int, list[dict[str, object]]]:
    run = lint("--format", "json", *args)
    no_traceback(run)
    return run.code, json.loads(run.stdout)["findings"]


SEED = (SAMPLES / "seed-demo.yaml").read_bytes()
ONNX_CONFIG = 'name: "m"\nbackend: "onnxruntime"\nmax_batch_size: 8\ninstance_group [{ kind: KIND_GPU, count: 1 }]\n'


# --- YAML alias bombs (the plain plan bomb is in tests/test_cli.py) -------------------------


def _bomb(levels: int = 10, width: int = 9) -> list[str]:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * width)}]")
    return lines


def test_alias_bomb_inside_a_kubernetes_manifest_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: chat\n  annotations:\n    x:\n"
        + "".join(f"      {line}\n" for line in _bomb()),
    )
    assert_refused_alone(lint(str(path)), path, "alias bomb")


def test_alias_bomb_in_a_later_document_is_refused(tmp_path: Path) -> None:
    bomb = "".join(f"  {line}\n" for line in _bomb())
    path = write(tmp_path / "multi.yaml", SEED.decode() + "---\nmodels: []\nx:\n" + bomb)
    assert_refused(lint(str(path)), path, "alias bomb")


def test_alias_bomb_through_the_library_is_an_input_error() -> None:
    from policy.errors import InputError
    from policy.yamlio import load_documents

    text = "models: []\nx:\n" + "".join(f"  {line}\n" for line in _bomb())
    with pytest.raises(InputError, match="alias bomb"):
        load_documents(text, "bomb.yaml")


def test_merge_key_chain_does_not_expand(tmp_path: Path) -> None:
    """`<<:` merges of merges: keys are copied, never multiplied; the unknown key is the error."""
    lines = ["models: []", "x:", "  a0: &a0 {k: 1}"]
    lines += [f"  a{n}: &a{n} {{<<: [*a{n - 1}], k{n}: 1}}" for n in range(1, 200)]
    path = write(tmp_path / "merges.yaml", "\n".join(lines) + "\n")
    assert_refused_alone(lint(str(path)), path, "x: unknown key")


# --- 10,000-deep nesting ----------------------------------------------------------------------


def test_deep_yaml_flow_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.yaml", "models: " + "[" * DEEP + "]" * DEEP + "\n")
    assert_refused_alone(lint(str(path)), path, "nested deeper than")


def test_deep_yaml_block_nesting_is_refused(tmp_path: Path) -> None:
    text = "models:\n" + "".join("  " * n + f"k{n}:\n" for n in range(1, DEEP + 1)) + "  " * (DEEP + 1) + "end\n"
    path = write(tmp_path / "deep-block.yaml", text)
    assert_refused_alone(lint(str(path)), path)


def test_deep_yaml_mapping_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "deep-map.yaml", "models: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n")
    assert_refused_alone(lint(str(path)), path, "nested deeper than")


def test_deep_json_array_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.json", '{"models": ' + "[" * DEEP + "]" * DEEP + "}")
    assert_refused_alone(lint(str(path)), path, "nested deeper than")


def test_deep_json_object_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "deep-object.json", '{"models": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}")
    assert_refused_alone(lint(str(path)), path, "nested deeper than")


def test_deep_json_in_a_kubernetes_manifest_is_refused(tmp_path: Path) -> None:
    deep = "[" * DEEP + "]" * DEEP
    path = write(
        tmp_path / "pod.json",
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": ' + deep + "}}",
    )
    assert_refused_alone(lint(str(path)), path, "nested deeper than")


def test_deep_pbtxt_nesting_is_refused(tmp_path: Path) -> None:
    repo = model_repo(tmp_path, 'name: "m"\ninstance_group [' + "{ " * DEEP + "}" * DEEP + "]\n")
    assert_refused(lint(str(repo)), repo / "m" / "config.pbtxt", "not a valid Triton model config")


def test_deep_pbtxt_message_nesting_is_refused(tmp_path: Path) -> None:
    repo = model_repo(tmp_path, 'name: "m"\nbackend: "onnxruntime"\n' + "dynamic_batching { " * DEEP + "}" * DEEP + "\n")
    assert_refused(lint(str(repo)), repo / "m" / "config.pbtxt", "not a valid Triton model config")


def test_deep_pbtxt_read_alone_is_refused(tmp_path: Path) -> None:
    repo = model_repo(tmp_path, 'name: "m"\nparameters ' + "{ " * DEEP + "}" * DEEP + "\n")
    config = repo / "m" / "config.pbtxt"
    assert_refused(lint(str(config)), config, "not a valid Triton model config")


def test_deep_vllm_model_json_in_a_repository_is_refused(tmp_path: Path) -> None:
    """A vLLM model's `1/model.json` is JSON too: nesting it deep must not crash the reader."""
    repo = model_repo(
        tmp_path,
        'name: "m"\nbackend: "vllm"\n',
        {"1/model.json": '{"gpu_memory_utilization": ' + "[" * DEEP + "]" * DEEP + "}"},
    )
    run = lint(str(repo))
    assert_refused(run, repo / "m" / "1" / "model.json")


# --- a 50 MiB file ----------------------------------------------------------------------------


def _fifty_mib(path: Path, head: bytes, comment: bytes = b"# ") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    filler = comment + b"x" * (1 << 20) + b"\n"
    with path.open("wb") as out:
        out.write(head)
        for _ in range(50):
            out.write(filler)
    assert path.stat().st_size > 50 * 2**20
    return path


def test_fifty_mib_yaml_plan_is_refused_unread(tmp_path: Path) -> None:
    path = _fifty_mib(tmp_path / "huge.yaml", SEED)
    from policy.yamlio import MAX_FILE_BYTES

    line = assert_refused_alone(lint(str(path)), path, f"up to {MAX_FILE_BYTES // 2**20} MiB")
    assert "50 MiB" in line


def test_fifty_mib_json_plan_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as out:
        out.write(b'{"models": [], "pad": "')
        for _ in range(50):
            out.write(b"x" * (1 << 20))
        out.write(b'"}')
    assert_refused_alone(lint(str(path)), path, "MiB")


@linux_only
def test_fifty_mib_config_pbtxt_is_refused_unread(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    config = _fifty_mib(repo / "m" / "config.pbtxt", ONNX_CONFIG.encode())
    assert_refused(lint_with_ceiling(str(repo)), config, "MiB")


def test_fifty_mib_repository_overlay_is_refused_unread(tmp_path: Path) -> None:
    repo = model_repo(tmp_path, ONNX_CONFIG)
    overlay = _fifty_mib(repo / "gpuadmit.yaml", b"gpus: [{id: gpu0, memory_gb: 80}]\n")
    assert_refused(lint(str(repo)), overlay, "MiB")


@linux_only
def test_endless_device_is_refused_within_memory() -> None:
    """A path whose size `stat` cannot tell (a device, an endless pipe) is still held to the file limit."""
    assert_refused_alone(lint_with_ceiling("/dev/zero"), Path("/dev/zero"), "MiB")


@linux_only
def test_plan_through_a_pipe_lints_normally() -> None:
    """`gpuadmit lint /dev/stdin < plan` (or `<(kubectl ...)`): a pipe has no size, and that is fine."""
    proc = subprocess.run(
        [sys.executable, "-m", "policy.cli", "lint", "/dev/stdin"],
        cwd=ROOT,
        input=SEED,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    run = Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    no_traceback(run)
    assert run.code == 1 and "6 errors" in run.stdout


# --- a million-element list -------------------------------------------------------------------


@linux_only
def test_million_element_yaml_list_is_refused_within_memory(tmp_path: Path) -> None:
    path = write(tmp_path / "million.yaml", "models: [" + ",".join(["1"] * 1_000_000) + "]\n")
    assert_refused_alone(lint_with_ceiling(str(path)), path, "models[0]")


@linux_only
def test_million_element_json_list_is_refused_within_memory(tmp_path: Path) -> None:
    path = write(tmp_path / "million.json", '{"models": [' + ",".join(["1"] * 1_000_000) + "]}")
    assert_refused_alone(lint_with_ceiling(str(path)), path, "models[0]")


@linux_only
def test_flat_list_past_the_value_limit_is_refused_within_memory(tmp_path: Path) -> None:
    """A 20 MB file (under the file-size limit) of ten million values: past MAX_VALUES
    whether or not it uses aliases."""
    path = write(tmp_path / "flat.yaml", "models: []\njunk: [" + ",".join(["0"] * 10_000_000) + "]\n")
    assert_refused_alone(lint_with_ceiling(str(path)), path)


@linux_only
def test_the_memory_ceiling_leaves_room_for_ordinary_plans() -> None:
    """The ceiling itself is sane: the seed demo lints normally under it."""
    run = lint_with_ceiling(str(SAMPLES / "seed-demo.yaml"))
    no_traceback(run)
    assert run.code == 1 and "6 errors" in run.stdout


# --- NaN, Infinity, huge numbers ---------------------------------------------------------------


#: Past Python's 4,300-digit limit on converting text to int (CVE-2020-10735).
FIVE_THOUSAND_DIGITS = "1" + "0" * 5000

NUMBER_CASES = {
    "inf.yaml": ("gpus: [{id: gpu0, memory_gb: .inf}]\nmodels: []\n", "finite number"),
    "minus-inf.yaml": ("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: a, gpu: gpu0, gpu_gb: -.inf}]\n", "gpu_gb"),
    "nan-sla.yaml": ("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: a, gpu: gpu0, gpu_gb: 1, sla_ms: .NaN}]\n", "sla_ms"),
    "huge-int.yaml": (f"gpus: [{{id: gpu0, memory_gb: {10**400}}}]\nmodels: []\n", "memory_gb"),
    "huge-instances.yaml": (
        f"gpus: [{{id: gpu0, memory_gb: 80}}]\nmodels: [{{name: a, gpu: gpu0, gpu_gb: 1, instances: {10**400}}}]\n",
        "instances",
    ),
    "huge-priority.yaml": (
        f"gpus: [{{id: gpu0, memory_gb: 80}}]\nmodels: [{{name: a, gpu: gpu0, gpu_gb: 1, priority: {10**400}}}]\n",
        "priority",
    ),
    "huge-float.yaml": ("gpus: [{id: gpu0, memory_gb: 1e400}]\nmodels: []\n", "memory_gb"),
    "nan.json": ('{"gpus": [{"id": "gpu0", "memory_gb": NaN}], "models": []}', "NaN"),
    "infinity.json": ('{"gpus": [{"id": "gpu0", "memory_gb": Infinity}], "models": []}', "Infinity"),
    "minus-infinity.json": ('{"GPU_GB": -Infinity, "models": []}', "Infinity"),
    "huge-int.json": ('{"gpus": [{"id": "gpu0", "memory_gb": ' + str(10**400) + '}], "models": []}', "memory_gb"),
    "huge-exponent.json": ('{"gpus": [{"id": "gpu0", "memory_gb": 1e400}], "models": []}', "memory_gb"),
    "5000-digits.yaml": (f"GPU_GB: {FIVE_THOUSAND_DIGITS}\nmodels: []\n", "GPU_GB"),
    "5000-digits.json": ('{"GPU_GB": ' + FIVE_THOUSAND_DIGITS + ', "models": []}', "GPU_GB"),
    "huge-rate.json": (
        '{"gpus": [{"id": "gpu0", "memory_gb": 80}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 1, '
        '"latency_critical": true, "rate_limit": {"max_rps": ' + str(10**400) + "}}]}",
        "max_rps",
    ),
}


@pytest.mark.parametrize("name", sorted(NUMBER_CASES))
def test_nan_infinity_and_huge_numbers_are_refused(tmp_path: Path, name: str) -> None:
    text, message = NUMBER_CASES[name]
    path = write(tmp_path / name, text)
    assert_refused_alone(lint(str(path)), path, message)


def test_huge_numbers_in_a_triton_config_are_refused(tmp_path: Path) -> None:
    config = ONNX_CONFIG + "".join(
        f'parameters {{ key: "gpuadmit.{key}" value {{ string_value: "{value}" }} }}\n'
        for key, value in (("gpu_gb", "nan"), ("sla_ms", "1e400"), ("priority", str(10**400)))
    )
    repo = model_repo(tmp_path, config)
    run = lint(str(repo))
    no_traceback(run)
    assert run.code == 2
    for line in run.stdout.splitlines():
        assert len(line) - len(str(repo)) <= MAX_LINE_CHARS, line[:300]


def test_huge_numbers_in_a_pbtxt_field_are_refused(tmp_path: Path) -> None:
    repo = model_repo(tmp_path, 'name: "m"\nbackend: "onnxruntime"\nmax_batch_size: ' + str(10**400) + "\n")
    assert_refused(lint(str(repo)), repo / "m" / "config.pbtxt")


KUBERNETES_NUMBERS = {
    "gpu-inf": ("{nvidia.com/gpu: .inf}", '"0.5"'),
    "gpu-nan": ("{nvidia.com/gpu: .nan}", '"0.5"'),
    "gpu-1e400": ("{nvidia.com/gpu: 1e400}", '"0.5"'),
    "gpu-huge-int": ("{nvidia.com/gpu: " + str(10**400) + "}", '"0.5"'),
    "max-num-seqs-inf": ("{nvidia.com/gpu: 1}", '"0.5", "--max-num-seqs", "inf"'),
    "gpu-memory-utilization-nan": ("{nvidia.com/gpu: 1}", '"nan"'),
}


@pytest.mark.parametrize("case", sorted(KUBERNETES_NUMBERS))
def test_nan_infinity_and_huge_numbers_in_a_deployment_are_refused(tmp_path: Path, case: str) -> None:
    limits, utilisation = KUBERNETES_NUMBERS[case]
    path = write(
        tmp_path / f"{case}.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: chat, namespace: ai}\nspec:\n"
        "  replicas: 1\n  template:\n    spec:\n      containers:\n"
        "        - name: vllm\n          image: vllm/vllm-openai\n"
        f'          args: ["--model", "x", "--gpu-memory-utilization", {utilisation}]\n'
        f"          resources:\n            limits: {limits}\n",
    )
    assert_refused_alone(lint(str(path)), path)


KUBERNETES_COUNTS = {
    "mig-100": "nvidia.com/mig-1g.10gb: 100",
    "mig-billion": "nvidia.com/mig-1g.10gb: 1000000000",
    "gpu-billion": "nvidia.com/gpu: 1000000000",
}


@linux_only
@pytest.mark.parametrize("case", sorted(KUBERNETES_COUNTS))
def test_absurd_gpu_counts_in_a_pod_are_refused_within_memory(tmp_path: Path, case: str) -> None:
    path = write(
        tmp_path / f"{case}.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: chat}\nspec:\n  containers:\n    - name: c\n"
        f"      image: vllm/vllm-openai\n      resources: {{limits: {{{KUBERNETES_COUNTS[case]}}}}}\n",
    )
    assert_refused_alone(lint_with_ceiling(str(path)), path)


EXPLICIT_TAGS = {
    "float-empty": "!!float",
    "float-word": "!!float x",
    "int-word": "!!int x",
    "int-hex-empty": "!!int 0x",
    "bool-word": "!!bool maybe",
    "bool-empty": "!!bool",
    "timestamp-word": "!!timestamp x",
}


@pytest.mark.parametrize("case", sorted(EXPLICIT_TAGS))
def test_explicit_yaml_tag_with_a_wrong_value_is_refused(tmp_path: Path, case: str) -> None:
    path = write(tmp_path / f"{case}.yaml", f"GPU_GB: {EXPLICIT_TAGS[case]}\nmodels: []\n")
    assert_refused_alone(lint(str(path)), path)


# --- encodings: non-UTF-8, BOM, CRLF, tabs -------------------------------------------------------


def test_latin1_json_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.json", b'{"models": [{"name": "caf\xe9"}]}')
    assert_refused_alone(lint(str(path)), path, "not valid UTF-8")


def test_utf16_plan_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "utf16.yaml", SEED.decode().encode("utf-16"))
    assert_refused_alone(lint(str(path)), path)


def test_latin1_config_pbtxt_is_refused(tmp_path: Path) -> None:
    repo = model_repo(tmp_path, b'name: "m\xe9"\nbackend: "onnxruntime"\n')
    assert_refused(lint(str(repo)), repo / "m" / "config.pbtxt", "not valid UTF-8")


def test_latin1_kubernetes_manifest_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "pod.yaml", b"apiVersion: v1\nkind: Pod\nmetadata: {name: caf\xe9}\n")
    assert_refused_alone(lint(str(path)), path, "not valid UTF-8")


def test_lone_surrogate_escape_in_json_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "surrogate.json", '{"GPU_GB": 80, "models": [{"name": "\\ud800", "gpu_gb": 1}]}')
    assert_refused_alone(lint(str(path)), path, "models[0].name")


def _seed_findings(path: Path) -> tuple[int, list[tuple[object, ...]]]:
    code, findings = json_findings(str(path))
    return code, sorted((f["rule"], f["model"], f["line"]) for f in findings)


def test_utf8_bom_plan_lints_like_the_plain_one(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", SEED)
    bom = write(tmp_path / "bom.yaml", b"\xef\xbb\xbf" + SEED)
    assert _seed_findings(bom) == _seed_findings(plain)
    assert _seed_findings(bom)[0] == 1


def test_utf8_bom_json_plan_lints_normally(tmp_path: Path) -> None:
    seed = {"GPU_GB": 80, "models": [{"name": "chat", "gpu_gb": 42, "sla_ms": 200, "latency_critical": True}]}
    path = write(tmp_path / "bom.json", b"\xef\xbb\xbf" + json.dumps(seed).encode())
    code, findings = json_findings(str(path))
    assert code == 1
    assert {f["rule"] for f in findings} >= {"latency-critical-rate-limit"}


def test_utf8_bom_config_pbtxt_reads_normally(tmp_path: Path) -> None:
    plain = model_repo(tmp_path / "a", ONNX_CONFIG)
    bom = model_repo(tmp_path / "b", b"\xef\xbb\xbf" + ONNX_CONFIG.encode())
    plain_code, plain_findings = json_findings(str(plain))
    bom_code, bom_findings = json_findings(str(bom))
    assert bom_code == plain_code != 2
    assert sorted((f["rule"], f["line"]) for f in bom_findings) == sorted((f["rule"], f["line"]) for f in plain_findings)


def test_crlf_plan_lints_like_the_plain_one(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", SEED)
    crlf = write(tmp_path / "crlf.yaml", SEED.replace(b"\n", b"\r\n"))
    assert _seed_findings(crlf) == _seed_findings(plain)


def test_old_mac_line_endings_lint_like_the_plain_one(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", SEED)
    cr = write(tmp_path / "cr.yaml", SEED.replace(b"\n", b"\r"))
    assert _seed_findings(cr) == _seed_findings(plain)


def test_crlf_json_plan_keeps_its_lines(tmp_path: Path) -> None:
    seed = {"GPU_GB": 80, "models": [{"name": "chat", "gpu_gb": 42, "sla_ms": 200, "latency_critical": True}]}
    text = json.dumps(seed, indent=2)
    plain = write(tmp_path / "plain.json", text)
    crlf = write(tmp_path / "crlf.json", text.replace("\n", "\r\n"))
    assert _seed_findings(crlf) == _seed_findings(plain)
    assert _seed_findings(crlf)[0] == 1


def test_crlf_config_pbtxt_reads_normally(tmp_path: Path) -> None:
    plain = model_repo(tmp_path / "a", ONNX_CONFIG)
    crlf = model_repo(tmp_path / "b", ONNX_CONFIG.replace("\n", "\r\n"))
    plain_code, plain_findings = json_findings(str(plain))
    crlf_code, crlf_findings = json_findings(str(crlf))
    assert crlf_code == plain_code != 2
    assert sorted((f["rule"], f["line"]) for f in crlf_findings) == sorted((f["rule"], f["line"]) for f in plain_findings)


def test_crlf_kubernetes_manifest_reads_normally(tmp_path: Path) -> None:
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: chat}\nspec:\n  containers:\n"
        "    - name: c\n      image: x\n      resources: {limits: {nvidia.com/gpu: 1}}\n"
    )
    plain = write(tmp_path / "plain.yaml", manifest)
    crlf = write(tmp_path / "crlf.yaml", manifest.replace("\n", "\r\n"))
    assert _seed_findings(crlf) == _seed_findings(plain)
    assert _seed_findings(crlf)[0] != 2


def test_flow_style_yaml_plan_lints_like_the_block_one(tmp_path: Path) -> None:
    """`{...}` is YAML too: a flow-style plan must not be read as (invalid) JSON."""
    import yaml

    data = yaml.safe_load(SEED)
    block = write(tmp_path / "block.yaml", yaml.safe_dump(data, default_flow_style=False))
    flow = write(tmp_path / "flow.yaml", yaml.safe_dump(data, default_flow_style=True))
    assert flow.read_text().startswith("{")
    assert _seed_findings(flow)[0] == 1
    assert sorted(f[:2] for f in _seed_findings(flow)[1]) == sorted(f[:2] for f in _seed_findings(block)[1])


def test_tab_indentation_is_one_yaml_error(tmp_path: Path) -> None:
    path = write(tmp_path / "tabs.yaml", SEED.replace(b"  - ", b"\t- "))
    assert_refused_alone(lint(str(path)), path, "invalid YAML", f"{path}:4")


def test_tabs_between_values_are_fine(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", SEED)
    tabbed = write(tmp_path / "tabbed.yaml", SEED.replace(b"{name:", b"{\tname:").replace(b", ", b",\t"))
    assert _seed_findings(tabbed) == _seed_findings(plain)


def test_tabs_in_json_are_whitespace(tmp_path: Path) -> None:
    seed = {"GPU_GB": 80, "models": [{"name": "chat", "gpu_gb": 42, "sla_ms": 200, "latency_critical": True}]}
    path = write(tmp_path / "tabs.json", json.dumps(seed, indent="\t"))
    code, findings = json_findings(str(path))
    assert code == 1 and findings


def test_tabs_in_config_pbtxt_are_whitespace(tmp_path: Path) -> None:
    plain = model_repo(tmp_path / "a", ONNX_CONFIG)
    tabbed = model_repo(tmp_path / "b", ONNX_CONFIG.replace(" ", "\t"))
    assert json_findings(str(tabbed))[0] == json_findings(str(plain))[0] != 2


# --- binary files ---------------------------------------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def test_png_named_yml_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "plan.yml", PNG)
    assert_refused_alone(lint(str(path)), path, "binary file")


def test_gzip_named_json_is_refused(tmp_path: Path) -> None:
    import gzip

    path = write(tmp_path / "plan.json", gzip.compress(SEED))
    assert_refused_alone(lint(str(path)), path)


def test_binary_config_pbtxt_is_refused(tmp_path: Path) -> None:
    repo = model_repo(tmp_path, PNG)
    assert_refused(lint(str(repo)), repo / "m" / "config.pbtxt")


def test_nul_bytes_late_in_a_plan_are_refused(tmp_path: Path) -> None:
    """Past the first 8 KiB the binary sniff does not look; the parser must still refuse."""
    path = write(tmp_path / "late-nul.yaml", SEED + b"#" + b"x" * 9000 + b"\n\x00\x00\x00\n")
    assert_refused_alone(lint(str(path)), path)


def test_control_characters_in_yaml_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "ctrl.yaml", b"models:\n  - name: a\x07b\x1b[31m\n")
    assert_refused_alone(lint(str(path)), path, "invalid YAML")


# --- the library never raises on any of these ----------------------------------------------------


LIBRARY_CASES: dict[str, tuple[bytes, int]] = {
    "bom.yaml": (b"\xef\xbb\xbf" + SEED, 1),
    "crlf.yaml": (SEED.replace(b"\n", b"\r\n"), 1),
    "tabs.yaml": (SEED.replace(b"  - ", b"\t- "), 2),
    "binary.yaml": (PNG, 2),
    "latin1.yaml": (b"models:\n  - name: caf\xe9\n", 2),
    "deep.yaml": (b"models: " + b"[" * DEEP + b"]" * DEEP, 2),
    "deep.json": (b'{"models": ' + b"[" * DEEP + b"]" * DEEP + b"}", 2),
    "nan.json": (b'{"GPU_GB": NaN, "models": []}', 2),
    "inf.yaml": (b"GPU_GB: .inf\nmodels: []\n", 2),
    "huge.yaml": (f"GPU_GB: {10**400}\nmodels: []\n".encode(), 2),
    "huge.json": (f'{{"GPU_GB": {10**400}, "models": []}}'.encode(), 2),
    "bomb.yaml": (("models: []\nx:\n" + "".join(f"  {line}\n" for line in _bomb())).encode(), 2),
}


@pytest.mark.parametrize("name", sorted(LIBRARY_CASES))
def test_library_reports_hostile_files_without_raising(tmp_path: Path, linter, name: str) -> None:  # type: ignore[no-untyped-def]
    content, expected = LIBRARY_CASES[name]
    path = write(tmp_path / name, content)
    report = linter.lint_paths([path])
    assert report.exit_code() == expected
    if expected == 2:
        (finding,) = [f for f in report.findings if f.rule == "schema"]
        assert finding.file == str(path)
        assert finding.message and len(finding.message) <= MAX_LINE_CHARS


def test_library_reports_a_deep_pbtxt_without_raising(tmp_path: Path, linter) -> None:  # type: ignore[no-untyped-def]
    repo = model_repo(tmp_path, 'name: "m"\ninstance_group [' + "{ " * DEEP + "}" * DEEP + "]\n")
    report = linter.lint_paths([repo])
    assert report.exit_code() == 2


def test_library_reports_a_deep_vllm_model_json_without_raising(tmp_path: Path, linter) -> None:  # type: ignore[no-untyped-def]
    repo = model_repo(tmp_path, 'name: "m"\nbackend: "vllm"\n', {"1/model.json": '{"a": ' + "[" * DEEP + "]" * DEEP + "}"})
    report = linter.lint_paths([repo])
    assert report.exit_code() == 2


# --- the wrong type where a mapping or list belongs ---------------------------------------------


def test_plan_metadata_that_is_a_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "meta.yaml", "gpu_gb: 80\nmetadata: [1]\nmodels: []\n")
    assert_refused_alone(lint(str(path)), path, "metadata")


def test_container_args_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "args.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: chat}\nspec:\n  template:\n    spec:\n"
        "      containers:\n        - name: vllm\n          image: vllm/vllm-openai\n          args: 5\n"
        "          resources: {limits: {nvidia.com/gpu: 1}}\n",
    )
    assert_refused_alone(lint(str(path)), path, "args")


# --- AdmissionReviews (in-process; the served app is tested over HTTPS in tests/webhook) ---------


@pytest.fixture(scope="module")
def admission():  # type: ignore[no-untyped-def]
    import hardening_support as hs

    app = hs.AdmissionApp(max_body_bytes=64 * 1024)
    yield app
    app.close()


def _pod(limits: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chat", "namespace": "ai"},
        "spec": {"containers": [{"name": "c", "image": "vllm/vllm-openai", "resources": {"limits": limits}}]},
    }


def _unsafe_plan() -> dict[str, object]:
    import yaml

    return {
        "apiVersion": "gpuadmit.dev/v1alpha1",
        "kind": "ServingPlan",
        "metadata": {"name": "seed", "namespace": "ai"},
        "spec": yaml.safe_load(SEED),
    }


def test_review_without_request_is_400(admission) -> None:  # type: ignore[no-untyped-def]
    status, body = admission.post(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode())
    assert status == 400 and b"request" in body


def test_review_without_uid_is_denied_not_allowed(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    review = hs.admission_review(_unsafe_plan(), kind=("gpuadmit.dev", "v1alpha1", "ServingPlan"))
    del review["request"]["uid"]
    status, body = admission.post(json.dumps(review).encode())
    if status == 200:
        assert json.loads(body)["response"]["allowed"] is False
    else:
        assert status == 400


def test_review_without_object_is_a_well_formed_answer(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    review = hs.admission_review(_unsafe_plan(), uid="no-object", kind=("gpuadmit.dev", "v1alpha1", "ServingPlan"))
    del review["request"]["object"]
    response = hs.check_admission(admission, json.dumps(review).encode(), uid="no-object")
    assert response is not None and response["allowed"] is False


def test_review_of_the_wrong_api_version_is_400(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    review = hs.admission_review(_pod({"nvidia.com/gpu": 1}))
    review["apiVersion"] = "admission.k8s.io/v1beta1"
    status, body = admission.post(json.dumps(review).encode())
    assert status == 400 and b"admissionReviewVersions" in body


def test_review_of_an_unexpected_kind_is_allowed_untouched(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ai"}, "data": {"k": "dg=="}}
    response = hs.check_admission(admission, json.dumps(hs.admission_review(secret, uid="secret-1")).encode(), uid="secret-1")
    assert response == {"uid": "secret-1", "allowed": True}


def test_review_one_byte_over_the_limit_is_413(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    review = hs.admission_review(_pod({"nvidia.com/gpu": 1}), uid="big")
    body = json.dumps(review).encode()
    limit = admission.settings.max_body_bytes
    padded = body[:-1] + b" " * (limit + 1 - len(body)) + body[-1:]
    assert len(padded) == limit + 1
    status, message = admission.post(padded)
    assert status == 413 and b"limit" in message
    exact = body[:-1] + b" " * (limit - len(body)) + body[-1:]
    assert admission.post(exact)[0] == 200


def test_review_over_the_limit_without_content_length_is_413(admission) -> None:  # type: ignore[no-untyped-def]
    status, _ = admission.loop.run_until_complete(
        admission._post(b"{" + b" " * (admission.settings.max_body_bytes + 10) + b"}", 50, False)
    )
    assert status == 413


def test_review_sent_slowly_is_answered_the_same(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    body = json.dumps(hs.admission_review(_unsafe_plan(), uid="slow", kind=("gpuadmit.dev", "v1alpha1", "ServingPlan"))).encode()
    at_once = hs.check_admission(admission, body, uid="slow")
    byte_by_byte = hs.check_admission(admission, body, uid="slow", chunks=len(body))
    assert at_once == byte_by_byte and at_once is not None and at_once["allowed"] is False


@pytest.mark.parametrize("quantity", ["inf", "nan", "1e400", str(10**400)], ids=["inf", "nan", "1e400", "10**400"])
def test_review_with_absurd_gpu_quantity_is_denied_not_an_internal_error(admission, quantity: str) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    body = json.dumps(hs.admission_review(_pod({"nvidia.com/gpu": quantity}), uid="q-1")).encode()
    response = hs.check_admission(admission, body, uid="q-1")  # a 500 "internal error" breaks the invariant
    assert response is not None and response["allowed"] is False


def test_review_with_non_list_container_args_is_not_an_internal_error(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    pod = _pod({"nvidia.com/gpu": 1})
    pod["spec"]["containers"][0]["args"] = 5  # type: ignore[index]
    response = hs.check_admission(admission, json.dumps(hs.admission_review(pod, uid="a-1")).encode(), uid="a-1")
    assert response is not None and response["allowed"] is False


def test_review_with_a_5000_digit_number_is_400(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    review = json.dumps(hs.admission_review(_pod({"nvidia.com/gpu": 1}), uid="digits"))
    body = review.replace('"metadata": {', '"x": ' + FIVE_THOUSAND_DIGITS + ', "metadata": {', 1).encode()
    status, message = admission.post(body)
    assert status == 400, (status, message[:300])


def test_review_that_is_deeply_nested_is_400_or_denied(admission) -> None:  # type: ignore[no-untyped-def]
    import hardening_support as hs

    review = json.dumps(hs.admission_review(_pod({"nvidia.com/gpu": 1}), uid="deep"))
    body = review.replace('"metadata": {', '"x": ' + "[" * DEEP + "]" * DEEP + ', "metadata": {', 1).encode()
    status, raw = admission.post(body)
    if status == 200:  # read after all: then it must be a deny, never an allow
        response = hs.check_admission(admission, body, uid="deep")
        assert response is not None and response["allowed"] is False, response
    else:
        assert status == 400 and b"not valid JSON" in raw, (status, raw[:300])


WEBHOOK_MEMORY_PROBE = """
import json, logging, resource, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
logging.disable(logging.CRITICAL)
import hardening_support as hs
app = hs.AdmissionApp()
warm = hs.admission_review({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}})
app.post(json.dumps(warm).encode())
plan = "GPU_GB: 80\\nmodels: [" + ",".join(["1"] * 450_000) + "]\\n"
obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plan", "namespace": "ai",
       "labels": {"gpuadmit.dev/plan": "true"}}, "data": {"plan.yaml": plan}}
body = json.dumps(hs.admission_review(obj, uid="m", kind=("", "v1", "ConfigMap"))).encode()
def hwm():  # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec (the test runner's size)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
before = hwm()
status, out = app.post(body)
grown = hwm() - before
print(json.dumps({"status": status, "allowed": json.loads(out)["response"]["allowed"] if status == 200 else None, "grown_kib": grown}))
"""


@linux_only
def test_webhook_judges_a_configmap_under_1_mib_within_its_pod_memory_limit() -> None:
    """A ConfigMap (Kubernetes caps them at 1 MiB) labelled as a plan, holding a 450,000-item
    list: the webhook must answer it without growing past the memory limit its own
    Deployment sets, or the replica is OOM-killed and every admission fails."""
    import re

    deployment = (SAMPLES / "deploy" / "04-deployment.yaml").read_text()
    match = re.search(r"limits: \{[^}]*memory: (\d+)Mi", deployment)
    assert match, "the sample Deployment sets a memory limit"
    limit_kib = int(match.group(1)) * 1024
    proc = subprocess.run(
        [sys.executable, "-c", WEBHOOK_MEMORY_PROBE, str(ROOT), str(Path(__file__).parent)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == 200 and result["allowed"] is False
    assert result["grown_kib"] < limit_kib, f"grew {result['grown_kib'] // 1024} MiB past {limit_kib // 1024} MiB"


WEBHOOK_MANY_MODELS_PROBE = """
import json, logging, resource, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
logging.disable(logging.CRITICAL)
import hardening_support as hs
from policy.plan import MAX_MODELS_PER_GPU
app = hs.AdmissionApp(deadline_s=25.0)  # memory is the point here; a loaded machine may be slow
models = [{"name": f"model-with-a-longer-name-{m:05d}", "framework": "pytorch", "gpu": "gpu0", "gpu_gb": 0.01,
           "latency_critical": m % 3 == 0, "priority": 1 if m % 3 == 0 else 3} for m in range(MAX_MODELS_PER_GPU)]
obj = {"apiVersion": "gpuadmit.dev/v1alpha1", "kind": "ServingPlan", "metadata": {"name": "crowded", "namespace": "ai"},
       "spec": {"gpus": [{"id": "gpu0", "memory_gb": 4096}], "models": models}}
body = json.dumps(hs.admission_review(obj, uid="m", kind=("gpuadmit.dev", "v1alpha1", "ServingPlan"))).encode()
status, out = app.post(body)
answer = json.loads(out)["response"] if status == 200 else {}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would count the test
# runner this process was forked from.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"status": status, "allowed": answer.get("allowed"), "code": answer.get("status", {}).get("code"),
                  "bytes": len(body), "peak_kib": peak}))
"""


@linux_only
def test_webhook_judges_the_most_models_on_one_gpu_within_its_pod_memory_limit(tmp_path: Path) -> None:
    """Every model on one GPU, each the neighbour of all the others (once quadratic: 9,000
    such models took a server to 1.38 GiB). The whole process, rules and libraries
    included, stays under the memory limit of the sample Deployment, and the review is
    judged (a 403 with findings), not refused or failed."""
    import re

    deployment = (SAMPLES / "deploy" / "04-deployment.yaml").read_text()
    match = re.search(r"limits: \{[^}]*memory: (\d+)Mi", deployment)
    assert match, "the sample Deployment sets a memory limit"
    limit_kib = int(match.group(1)) * 1024
    proc = subprocess.run(
        [sys.executable, "-c", WEBHOOK_MANY_MODELS_PROBE, str(ROOT), str(Path(__file__).parent)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # A rule cache of its own, as a freshly started replica has.
        env={**os.environ, "PYTHONPATH": str(ROOT), "GPUADMIT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == 200 and result["allowed"] is False and result["code"] == 403, result
    assert result["peak_kib"] < limit_kib, f"peaked at {result['peak_kib'] // 1024} MiB, limit {limit_kib // 1024} MiB"


# --- the other files a run reads: project config, capacity files, rule folders ---------------------


def assert_refused_on_stderr(run: Run, file: Path, *messages: str) -> None:
    """Config, capacity and rule files stop the run: exit 2 and one line on stderr."""
    no_traceback(run)
    assert run.code == 2, (run.code, run.stdout[-1000:], run.stderr[-1000:])
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert str(file) in lines[0] and len(lines[0]) - len(str(file)) <= MAX_LINE_CHARS
    for message in messages:
        assert message in lines[0], lines[0]


def test_deep_project_config_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path / "deep.yaml", "rules: " + "[" * DEEP + "]" * DEEP + "\n")
    assert_refused_on_stderr(lint("--config", str(config), str(SAMPLES / "seed-demo.yaml")), config, "nested deeper than")


def test_project_config_with_control_characters_is_one_line(tmp_path: Path) -> None:
    config = write(tmp_path / "ctrl.yaml", b"rules:\n  x\x07: {enabled: false}\n")
    assert_refused_on_stderr(lint("--config", str(config), str(SAMPLES / "seed-demo.yaml")), config, "invalid YAML")


def test_deep_capacity_file_is_refused(tmp_path: Path) -> None:
    capacity = write(tmp_path / "inventory.yaml", "gpus: " + "[" * DEEP + "]" * DEEP + "\n")
    assert_refused_on_stderr(lint("--capacity", str(capacity), str(SAMPLES / "seed-demo.yaml")), capacity, "nested deeper than")


def test_binary_rule_file_is_refused(tmp_path: Path) -> None:
    rule = write(tmp_path / "rules" / "x.yaml", PNG)
    assert_refused_on_stderr(lint("--rules", str(rule.parent), str(SAMPLES / "seed-demo.yaml")), rule, "binary file")


@pytest.mark.parametrize(
    "expression",
    ["(" * 5000 + "true" + ")" * 5000, " && ".join(["true"] * 20000), "[" * 3000 + "]" * 3000 + " == []"],
    ids=["deep-parentheses", "huge-expression", "deep-lists"],
)
def test_absurd_rule_expression_is_refused(tmp_path: Path, expression: str) -> None:
    rule = write(
        tmp_path / "rules" / "absurd.yaml",
        "id: absurd\ntitle: t\nseverity: error\nscope: model\ndescription: d\nremediation: r\n"
        f'validations:\n  - expression: "{expression}"\n    message: m\n',
    )
    assert_refused_on_stderr(lint("--rules", str(rule.parent), str(SAMPLES / "seed-demo.yaml")), rule, "does not compile")
