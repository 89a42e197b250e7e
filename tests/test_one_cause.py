"""One cause, one error: a problem that two rules could each see is reported by one of
them, with what the other knows as context in its message (issue 11, Deliver 5)."""

from __future__ import annotations

from pathlib import Path

from policy.api import Linter

RULES = Path(__file__).parent / "rules"


def _errors(path: Path) -> list[tuple[str, str]]:
    report = Linter().lint_paths([path])
    return [(f.rule, f.message) for f in report.findings if f.severity == "error" and f.counts]


def test_an_overflow_caused_by_a_default_fraction_is_one_memory_fit_error_naming_the_reservation() -> None:
    errors = _errors(RULES / "memory-fit" / "fail-greedy-default-fraction.yaml")
    assert [rule for rule, _ in errors] == ["memory-fit"]
    assert "chat (vllm gpu_memory_utilization 0.92 (default) × 79.6 GiB = 73.3 GiB)" in errors[0][1]


def test_fractions_over_one_on_a_known_gpu_are_one_memory_fit_error() -> None:
    errors = _errors(RULES / "memory-fit" / "fail-greedy-fractions-sum.yaml")
    assert [rule for rule, _ in errors] == ["memory-fit"]
    assert "add up to more than 1" in errors[0][1]


def test_a_whole_gpu_tensorflow_beside_a_bounded_arena_is_one_error() -> None:
    errors = _errors(RULES / "memory-fit" / "fail-greedy-tensorflow-whole-gpu.yaml")
    assert [rule for rule, _ in errors] == ["memory-fit"]


def test_default_fractions_over_one_without_capacity_are_one_greedy_allocator_error() -> None:
    errors = _errors(RULES / "greedy-allocator" / "fail-three-vllm-no-capacity.yaml")
    assert [rule for rule, _ in errors] == ["greedy-allocator"]
    assert "add up to 2.76 > 1.0" in errors[0][1] and "left at the default: chat (vllm" in errors[0][1]


def test_a_product_without_mig_is_one_error_not_one_per_profile() -> None:
    assert [rule for rule, _ in _errors(RULES / "mig-layout" / "fail-not-mig-capable.yaml")] == ["mig-layout"]


def test_an_ambiguous_product_carved_into_mig_is_one_finding() -> None:
    report = Linter().lint_paths([RULES / "mig-layout" / "fail-ambiguous-product.yaml"])
    counted = [(f.severity, f.rule) for f in report.findings if f.counts and f.severity != "info"]
    assert counted == [("error", "mig-layout")]


def test_a_profile_over_its_limit_is_one_error_with_the_slices_it_takes() -> None:
    errors = _errors(RULES / "mig-layout" / "fail-over-limit.yaml")
    assert [rule for rule, _ in errors] == ["mig-layout"]
    assert "the layout takes 9 of 7 compute slices and 12 of 8 memory slices" in errors[0][1]


def test_a_mig_resource_on_a_node_of_unknown_product_is_not_refused() -> None:
    assert _errors(RULES / "mig-layout" / "fail-layout-unchecked-without-product.yaml") == []


def test_a_gpu_declared_larger_than_the_device_and_overflowing_it_is_one_memory_fit_error() -> None:
    folder = RULES / "capacity-match"
    report = Linter(capacity=str(folder / "capacity.yaml")).lint_paths([folder / "pass-overflow-is-memory-fits.yaml"])
    errors = [(f.rule, f.message) for f in report.findings if f.severity == "error" and f.counts]
    assert [rule for rule, _ in errors] == ["memory-fit"]
    assert "38.0 GiB usable (40.0 GiB (the device's; 80.0 declared) − 5 % headroom)" in errors[0][1]
