"""The one "did you mean" every misspelt name goes through."""

from policy.closest import closest, did_you_mean


def test_a_near_miss_is_suggested():
    assert closest("memroy-fit", ["memory-fit", "bulk-capped"]) == "memory-fit"
    assert did_you_mean("lantency_critical", ["latency_critical", "gpu_gb"]) == "; did you mean 'latency_critical'?"


def test_an_unrelated_word_gets_no_suggestion():
    assert closest("banana", ["memory-fit", "bulk-capped"]) is None
    assert did_you_mean("banana", ["memory-fit"]) == ""


def test_the_prefix_is_part_of_the_quoted_suggestion():
    assert did_you_mean("sla", ["sla-ms"], prefix="gpuadmit.dev/") == "; did you mean 'gpuadmit.dev/sla-ms'?"


def test_no_module_spells_its_own_did_you_mean():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    users = [
        str(path.relative_to(root))
        for folder in ("policy", "webhook")
        for path in (root / folder).rglob("*.py")
        if "get_close_matches" in path.read_text(encoding="utf-8") and path.name != "closest.py"
    ]
    assert users == []
