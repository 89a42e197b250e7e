"""YAML and JSON loading: positions of every key, duplicate keys, bombs, sizes, encodings."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.errors import InputError
from policy.yamlio import MAX_DEPTH, MAX_FILE_BYTES, LineDict, LineList, decode, load_documents, position, read_text


def _refused(text: str, file: str = "plan.yaml") -> str:
    with pytest.raises(InputError) as caught:
        load_documents(text, file)
    return str(caught.value)


def test_every_key_and_item_knows_its_line_and_column() -> None:
    (doc,) = load_documents("gpus:\n  - {id: gpu0}\nmodels:\n  - name: chat\n    gpu_gb: 42\n", "plan.yaml")
    data = doc.data
    assert isinstance(data, LineDict) and (doc.line, doc.index, doc.file) == (1, 0, "plan.yaml")
    assert data.key_lines == {"gpus": (1, 1), "models": (3, 1)}
    models = data["models"]
    assert isinstance(models, LineList) and models.item_lines == [(4, 5)]
    assert models[0].key_lines == {"name": (4, 5), "gpu_gb": (5, 5)}
    assert position(data, ("models", 0, "gpu_gb")) == (5, 5)
    assert position(data, ("models", 0, "missing")) == (4, 5)  # the deepest key that exists


def test_json_keeps_positions_too() -> None:
    (doc,) = load_documents('{\n  "models": [\n    {"name": "chat", "gpu_gb": 42}\n  ]\n}\n', "plan.json")
    assert position(doc.data, ("models", 0, "gpu_gb")) == (3, 22)


def test_several_documents_are_read_with_their_first_lines() -> None:
    docs = load_documents("a: 1\n---\n# empty next\n---\nb: 2\n", "x.yaml")
    assert [(d.index, d.line, dict(d.data)) for d in docs] == [(0, 1, {"a": 1}), (1, 5, {"b": 2})]


def test_dates_stay_strings_for_the_model_to_read() -> None:
    (doc,) = load_documents("expires: 2027-01-31\n", "x.yaml")
    assert doc.data["expires"] == "2027-01-31"


@pytest.mark.parametrize(
    ("text", "file", "message"),
    [
        ("a: 1\na: 2\n", "x.yaml", "x.yaml:2:1: a: duplicate key (first defined on line 1)"),
        ('{"a": 1, "a": 2}', "x.json", "x.json:1:10: a: duplicate key (first defined on line 1)"),
        ("a: [1, 2\n", "x.yaml", "x.yaml:2:1: invalid YAML:"),
        ('{"a": 1,}', "x.json", "x.json:1:9: invalid JSON:"),
        ('{"a": NaN}', "x.json", "NaN is not a number gpuadmit accepts"),
    ],
)
def test_malformed_input_is_one_line_with_file_and_line(text: str, file: str, message: str) -> None:
    error = _refused(text, file)
    assert message in error, error
    assert "\n" not in error


def test_yaml_flow_style_starting_like_json_is_read_as_yaml() -> None:
    (doc,) = load_documents("{models: [{name: chat}]}\n", "plan.yaml")
    assert doc.data == {"models": [{"name": "chat"}]}


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        lines.append(f"{chr(97 + n)}: &{chr(97 + n)} [" + ", ".join([f"*{chr(96 + n)}"] * 10) + "]")
    assert "YAML alias bomb?" in _refused("\n".join(lines) + "\n")


def test_nesting_beyond_the_limit_is_refused() -> None:
    deep = "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10)
    assert f"nested deeper than {MAX_DEPTH} levels" in _refused(f"a: {deep}\n")


def test_bytes_are_utf8_or_refused() -> None:
    assert decode("\ufeffa: 1\n".encode(), "x.yaml") == "a: 1\n"  # a BOM is tolerated
    with pytest.raises(InputError, match=r"x.yaml:2: not valid UTF-8 \(byte 0xff\)"):
        decode(b"a: 1\nb: \xff\n", "x.yaml")
    with pytest.raises(InputError, match="binary file, not YAML or JSON"):
        decode(b"\x00\x01\x02", "x.yaml")


def test_files_are_read_up_to_the_limit(tmp_path: Path) -> None:
    small = tmp_path / "plan.yaml"
    small.write_text("a: 1\n", encoding="utf-8")
    assert read_text(small) == "a: 1\n"
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InputError, match=f"file is 32 MiB; gpuadmit reads files up to {MAX_FILE_BYTES // 2**20} MiB"):
        read_text(big)
    with pytest.raises(InputError, match="cannot read config file"):
        read_text(tmp_path / "missing.yaml", what="config")
