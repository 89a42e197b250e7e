"""The project config (`.gpuadmit.yaml`): where it is found, what it holds, and the
one-line error (file, line, field, did-you-mean) for everything it must not hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.config import CONFIG_NAMES, ProjectConfig, find_config, load_config
from policy.errors import InputError


def _load(tmp_path: Path, text: str) -> ProjectConfig:
    path = tmp_path / ".gpuadmit.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


def test_no_config_file_is_the_defaults() -> None:
    config = load_config(None)
    assert config == ProjectConfig()
    assert (config.fail_on, config.strict_capacity, config.rules, config.waivers) == ("error", False, {}, [])
    assert (config.accounting.cuda_context_gb, config.accounting.headroom_pct) == (0.5, 5.0)
    assert config.ignored() is None


def test_the_nearest_config_upward_is_found(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert find_config(deep) is None or not find_config(deep).is_relative_to(tmp_path)  # type: ignore[union-attr]
    outer = tmp_path / ".gpuadmit.yaml"
    outer.write_text("fail_on: warning\n")
    assert find_config(deep) == outer
    inner = tmp_path / "a" / ".gpuadmit.yml"
    inner.write_text("fail_on: never\n")
    assert find_config(deep) == inner
    assert ".gpuadmit.yml" in CONFIG_NAMES


def test_every_setting_is_read(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "rules:\n"
        "  memory-headroom: {severity: info, params: {warn_pct: 80}}\n"
        "  isolation: {enabled: false}\n"
        "rule_dirs: [policies/]\n"
        "accounting: {cuda_context_gb: 0.6, headroom_pct: 10}\n"
        "fail_on: warning\n"
        "strict_capacity: true\n"
        "waivers:\n"
        "  - {rule: bulk-capped, model: nightly, reason: runs at night, expires: 2027-03-31}\n"
        "ignore: [charts/**]\n",
    )
    assert config.rules["memory-headroom"].severity == "info"
    assert config.rules["memory-headroom"].params == {"warn_pct": 80}
    assert config.rules["isolation"].enabled is False
    assert config.rule_paths() == [(tmp_path / "policies").resolve()]
    assert (config.accounting.cuda_context_gb, config.accounting.headroom_pct) == (0.6, 10)
    assert (config.fail_on, config.strict_capacity) == ("warning", True)
    assert [(w.rule, w.model, str(w.expires)) for w in config.waivers] == [("bulk-capped", "nightly", "2027-03-31")]
    ignored = config.ignored()
    assert ignored is not None and ignored(tmp_path / "charts" / "x" / "values.yaml")
    assert config.base_dir == tmp_path


def test_an_empty_config_file_is_the_defaults(tmp_path: Path) -> None:
    assert _load(tmp_path, "# nothing set yet\n").fail_on == "error"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fail_on: errors\n", ".gpuadmit.yaml:1:1: fail_on: Input should be 'error', 'warning' or 'never' (got 'errors')"),
        ("fail-on: error\n", ".gpuadmit.yaml:1:1: fail-on: unknown key; did you mean 'fail_on'?"),
        ("accounting: {headroom: 10}\n", ".gpuadmit.yaml:1:14: accounting.headroom: unknown key; did you mean 'headroom_pct'?"),
        (
            "accounting:\n  headroom_pct: 100\n",
            ".gpuadmit.yaml:2:3: accounting.headroom_pct: Input should be less than 100 (got 100)",
        ),
        (
            "rules:\n  isolation: {enable: false}\n",
            ".gpuadmit.yaml:2:15: rules.isolation.enable: unknown key; did you mean 'enabled'?",
        ),
        (
            "rules:\n  isolation: {severity: fatal}\n",
            ".gpuadmit.yaml:2:15: rules.isolation.severity: Input should be 'error', 'warning' or 'info' (got 'fatal')",
        ),
        ("waivers:\n  - {rule: isolation, gpu: gpu0}\n", ".gpuadmit.yaml:2:5: waivers[0].reason: Field required"),
        ("- fail_on: error\n", ".gpuadmit.yaml: the config file holds one YAML mapping"),
        ("base_dir: /etc\n", ".gpuadmit.yaml:1:1: base_dir: unknown key"),
        ("fail_on: [\n", ".gpuadmit.yaml:2:1"),
    ],
)
def test_a_bad_config_is_one_line_with_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    error = _refused(tmp_path, text)
    assert error.startswith(str(tmp_path / ".gpuadmit.yaml")[: -len(".gpuadmit.yaml")])
    assert message in error, error
    assert "\n" not in error


def test_a_config_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_config(tmp_path / "missing.yaml")


def test_the_config_schema_forbids_unknown_keys() -> None:
    schema = ProjectConfig.model_json_schema()
    assert schema["additionalProperties"] is False
    assert {"rules", "rule_dirs", "accounting", "fail_on", "strict_capacity", "waivers", "ignore"} <= set(schema["properties"])
    assert "base_dir" not in schema["properties"]
