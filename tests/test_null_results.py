"""A custom rule whose values are `null` judges plan after plan without killing the process.

cel-expr-python 0.1.3 releases None once too often each time `Value.plain_value()`
converts a null, and aborts the interpreter (`Fatal Python error: none_dealloc`) after
a few thousand; the engine converts cel-cpp's results without it (policy.ruleeval).
The judging runs in a subprocess so that an abort fails this test instead of pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT

NULL_RULE = """\
id: null-note
title: A rule whose variable is null
severity: warning
scope: model
description: Every model fails, with a null variable and a null inside a list.
remediation: "nothing to fix for {model.name}"
variables:
  - name: note
    expression: "null"
  - name: notes
    expression: "[null, model.name, null]"
validations:
  - expression: "note != null || model.instances < 0"
    message: "{model.name}: note is {note}, notes {notes}"
"""

JUDGE = """
import sys
from pathlib import Path
from policy.api import Linter
from policy.readers import read_paths

linter = Linter(rule_dirs=[Path(sys.argv[1])])
rule = linter.rules.by_id["null-note"]
if sys.argv[3] == "cel-cpp":
    rule.fast = None  # the translation off: every judgement goes through cel-cpp
source = read_paths([Path(sys.argv[2])]).sources[0]
for n in range(10_000):
    (finding,) = [f for f in linter.rules.judge(source).findings if f.rule == "null-note"]
    assert finding.message == "emb: note is None, notes None, emb, None", finding.message
print("judged", n + 1)
"""


@pytest.mark.parametrize("path", ["cel-cpp", "translated"])
def test_a_rule_producing_null_survives_ten_thousand_judgements(tmp_path: Path, path: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "null-note.yaml").write_text(NULL_RULE)
    plan = tmp_path / "plan.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: emb, gpu: gpu0, gpu_gb: 1}]\n")
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(JUDGE), str(rules), str(plan), path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "judged 10000"
