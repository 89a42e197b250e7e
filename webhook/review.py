"""AdmissionReview in, AdmissionReview out: parsing the request and building the answer.

The contract (admission.k8s.io/v1): the response echoes `request.uid`, says `allowed`,
and on denial carries a Status whose message the user sees in kubectl. Bodies that are
not a v1 AdmissionReview at all are HTTP errors (400); a review we can read but whose
`request.uid` is missing is answered as a review that denies it (see docs/WEBHOOK.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import orjson

from policy.findings import FailOn, Finding
from policy.verdict import Mode, decide, decide_failure

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
#: Kubernetes truncates longer warnings; keep each strictly below.
MAX_WARNING_CHARS = 119
MAX_WARNINGS = 16
MAX_LISTED_FINDINGS = 20
MAX_MESSAGE_CHARS = 4000

Decision = Literal["allowed", "denied", "error"]


class BadRequest(Exception):
    """A body that is not an AdmissionReview we can answer: HTTP 400 with `message`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Review:
    """The parts of an AdmissionReview request gpuadmit uses."""

    uid: str
    kind: str
    group: str
    operation: str
    namespace: str
    name: str
    dry_run: bool
    sub_resource: str
    object: Any
    timeout_s: float | None = None
    #: The resource the request is about (`deployments` for `deployments/scale`), and its
    #: API group (`apps`; a scale's `kind` is `autoscaling` Scale whatever it scales).
    resource: str = ""
    resource_group: str = ""
    #: Set on the review webhook.scale builds of the cluster's object behind a
    #: `<resource>/scale` request: that resource. Judged as an UPDATE of the object.
    scale_of: str = ""

    @property
    def subject(self) -> str:
        """`Kind namespace/name`, as a person would name the object."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}".strip()


def parse_json(body: bytes) -> Any:
    """The body as JSON, or a BadRequest that says where it broke.

    orjson decodes a review in under half the standard library's time, and is strict where
    the standard library is not: NaN, Infinity, lone surrogates and invalid UTF-8 are
    errors, and nesting stops at 1,024 levels.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def parse_review(data: Any) -> Review:
    """A v1 AdmissionReview's request; BadRequest when the body is not one."""
    if not isinstance(data, dict):
        raise BadRequest(f"expected an {KIND} object, got a JSON {type(data).__name__}")
    if data.get("apiVersion") != API_VERSION or data.get("kind") != KIND:
        raise BadRequest(
            f"expected apiVersion {API_VERSION} kind {KIND}, got apiVersion "
            f"{data.get('apiVersion')!r} kind {data.get('kind')!r} (set admissionReviewVersions: [v1])"
        )
    request = data.get("request")
    if not isinstance(request, dict):
        raise BadRequest(f"{KIND} has no `request` object")
    raw_kind = request.get("kind")
    kind: dict[str, Any] = raw_kind if isinstance(raw_kind, dict) else {}
    uid = request.get("uid")
    obj = request.get("object")
    raw_resource = request.get("resource")
    resource: dict[str, Any] = raw_resource if isinstance(raw_resource, dict) else {}
    metadata: dict[str, Any] = {}
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        metadata = obj["metadata"]
    return Review(
        uid=uid if isinstance(uid, str) else "",
        kind=_text(kind.get("kind")) or _text(obj.get("kind") if isinstance(obj, dict) else None),
        group=_text(kind.get("group")),
        operation=_text(request.get("operation")).upper(),
        namespace=_text(request.get("namespace")) or _text(metadata.get("namespace")),
        name=_text(request.get("name")) or _text(metadata.get("name")) or _text(metadata.get("generateName")),
        dry_run=request.get("dryRun") is True,
        sub_resource=_text(request.get("subResource")),
        resource=_text(resource.get("resource")),
        resource_group=_text(resource.get("group")),
        object=obj,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass
class Answer:
    """What the webhook decided about one review, before it is written as JSON."""

    allowed: bool
    decision: Decision
    code: int | None = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def response(self, uid: str) -> dict[str, Any]:
        """The AdmissionReview that answers the review with this uid."""
        body: dict[str, Any] = {"uid": uid, "allowed": self.allowed}
        if not self.allowed:
            body["status"] = {
                "status": "Failure",
                "code": self.code or 403,
                "reason": "Forbidden" if (self.code or 403) == 403 else "BadRequest" if self.code == 400 else "InternalError",
                "message": self.message or "denied by gpuadmit",
            }
        if self.warnings:
            body["warnings"] = self.warnings
        if self.audit_annotations:
            body["auditAnnotations"] = self.audit_annotations
        return {"apiVersion": API_VERSION, "kind": KIND, "response": body}


def allow(warnings: Sequence[str] = ()) -> Answer:
    return Answer(allowed=True, decision="allowed", warnings=list(warnings))


def deny(code: int, message: str, decision: Decision = "denied") -> Answer:
    return Answer(allowed=False, decision=decision, code=code, message=_clip(message, MAX_MESSAGE_CHARS))


def line(finding: Finding, with_plan: bool = False) -> str:
    """`[rule] message`: the message already names the subject and the numbers."""
    plan = f"{finding.plan}: " if with_plan and finding.plan else ""
    return f"[{finding.rule}] {plan}{finding.message}"


def warning(text: str) -> str:
    """One line, printable, under Kubernetes' 120-character warning limit."""
    flat = " ".join(text.split())
    return _clip(flat, MAX_WARNING_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def verdict(subject: str, findings: Sequence[Finding], plans: int, *, mode: Mode, fail_on: FailOn) -> Answer:
    """Findings to an answer, as `policy.verdict.decide` decides: failing findings deny
    (enforce) or come back as `would deny` warnings (audit); other warnings are warnings."""
    decided = decide(findings, fail_on=fail_on, mode=mode)
    many = plans > 1
    warning_lines = [warning(line(f, many)) for f in decided.warnings]
    if mode == "audit":
        would = [warning("would deny: " + line(f, many)) for f in decided.failing]
        answer = allow(_capped([*would, *warning_lines]))
        errors = [f for f in decided.counting if f.severity == "error"]
        warns = [f for f in decided.counting if f.severity == "warning"]
        answer.audit_annotations = {
            "decision": "would-deny" if decided.would_deny else "allow",
            "errors": str(len(errors)),
            "warnings": str(len(warns)),
        }
        if decided.counting:
            answer.audit_annotations["findings"] = _clip(
                ",".join(f"{f.rule}:{f.model or f.gpu or f.plan or '-'}" for f in [*errors, *warns]), 1000
            )
        answer.findings = list(decided.counting)
        return answer
    if decided.allowed:
        answer = allow(_capped(warning_lines))
        answer.findings = list(decided.counting)
        return answer
    failing = decided.failing
    listed = [line(f, many) + (f" (fix: {f.fix})" if f.fix else "") for f in failing[:MAX_LISTED_FINDINGS]]
    more = len(failing) - len(listed)
    kind = "error" if all(f.severity == "error" for f in failing) else "finding"
    noun = kind if len(failing) == 1 else kind + "s"
    message = f"gpuadmit: {subject} is unsafe, {len(failing)} {noun}: " + "; ".join(listed)
    if more:
        message += f"; and {more} more (run `gpuadmit lint` on it for all)"
    answer = deny(403, message)
    answer.warnings = _capped(warning_lines)
    answer.findings = list(decided.counting)
    return answer


def failure(subject: str, reason: str, *, fail_open: bool) -> Answer:
    """The answer when gpuadmit could not judge (an internal error, a missed deadline):
    denied, or allowed with a warning under `--fail-open` (`policy.verdict.decide_failure`)."""
    text = f"gpuadmit could not judge {subject}: {reason}"
    if decide_failure(fail_open=fail_open).allowed:
        answer = allow([warning(text + "; allowed (--fail-open)")])
        answer.decision = "error"
        return answer
    return deny(500, text, "error")


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_WARNINGS:
        return lines
    return [*lines[: MAX_WARNINGS - 1], f"gpuadmit: {len(lines) - MAX_WARNINGS + 1} more findings not shown"]
