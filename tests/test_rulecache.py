"""The rule cache: keyed by everything that changes what a compiled rule means, and
never trusted blindly (a broken or foreign entry is a cache miss, never an error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from policy import rulecache
from policy.engine import RuleSet
from policy.rules import RuleOverride


def _digest(package: Path) -> str:
    return rulecache.package_digest.__wrapped__(package)  # type: ignore[attr-defined, no-any-return]


def test_the_package_digest_follows_code_and_data_content_not_caches(tmp_path: Path) -> None:
    package = tmp_path / "policy"
    (package / "data").mkdir(parents=True)
    (package / "facts.py").write_text("X = 1\n")
    (package / "data" / "gpus.yaml").write_text("a: 1\n")
    first = _digest(package)
    assert _digest(package) == first
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "facts.cpython-311.pyc").write_bytes(b"\0")
    (package / "notes.txt").write_text("not code")
    assert _digest(package) == first  # compiled files and other files do not count
    (package / "facts.py").write_text("X = 2\n")
    changed_code = _digest(package)
    assert changed_code != first
    (package / "data" / "gpus.yaml").write_text("a: 2\n")
    assert _digest(package) not in (first, changed_code)
    (package / "capacity").mkdir()
    (package / "capacity" / "match.py").write_text("")
    assert _digest(package) not in (first, changed_code)  # a new module anywhere in the package


def test_the_key_follows_rule_files_and_overrides(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "memory-fit.yaml").write_text((ROOT / "rules" / "memory-fit.yaml").read_text())
    key = rulecache.cache_key([rules], {})
    assert rulecache.cache_key([rules], {}) == key
    assert rulecache.cache_key([rules], {"memory-fit": {"severity": "warning"}}) != key
    (rules / "memory-fit.yaml").write_text((ROOT / "rules" / "memory-fit.yaml").read_text() + "\n")
    assert rulecache.cache_key([rules], {}) != key


def test_a_corrupt_entry_is_a_miss_and_the_rules_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUADMIT_CACHE_DIR", str(tmp_path))
    fresh = RuleSet.load()
    (entry,) = tmp_path.glob("rules-*.json")
    entry.write_text("{not json")
    assert rulecache.read(entry.stem.removeprefix("rules-")) is None
    again = RuleSet.load()
    assert [r.id for r in again.rules] == [r.id for r in fresh.rules]
    entry.write_text('[{"spec": {"id": 1}, "file": "x", "program": null}]')  # readable, but not a rule
    assert [r.id for r in RuleSet.load().rules] == [r.id for r in fresh.rules]


def test_an_unwritable_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GPUADMIT_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be created
    rules = RuleSet.load([], {"memory-fit": RuleOverride(severity="warning")})
    assert rules.by_id["memory-fit"].fast is not None


def test_off_disables_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUADMIT_CACHE_DIR", "off")
    assert rulecache.cache_dir() is None
    RuleSet.load()
    assert not list(tmp_path.iterdir())
