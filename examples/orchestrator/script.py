"""What the example's fake models answer: deterministic text, different for every item.

A real graph calls a provider. Here every agent role has a
:class:`~sdk.langgraph.fake.FakeChatModel` whose ``reply`` reads the prompt (ticket
number, topic, revision) and writes text from a random generator seeded by it: item N
says the same thing on every run, and items differ from each other. Tokens are words.

The script, per item number ``n``:

* research fans out to ``2 + n % 2`` topics (3 for odd items, 2 for even ones);
* the reviewer asks for changes on the first draft of items 1, 4, 7, … (``n % 3 == 1``)
  and approves their second; every other item is approved on its first draft.

So item ``n`` runs ``2 + topics + 2 * drafts`` nodes (:func:`node_executions`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import BaseMessage

APPROVAL_THRESHOLD = 0.75


@dataclass(frozen=True)
class Subject:
    title: str
    area: str
    component: str
    keywords: tuple[str, ...]


SUBJECTS: tuple[Subject, ...] = (
    Subject(
        "Retry budget for the telemetry client",
        "reliability",
        "telemetry client",
        ("backoff", "jitter", "spool", "idempotency", "timeout", "outage"),
    ),
    Subject(
        "Chunk overlap in knowledge base ingestion",
        "search",
        "knowledge base",
        ("chunking", "overlap", "tsvector", "ranking", "snippet", "recall"),
    ),
    Subject(
        "Monthly partition maintenance for workflow events",
        "storage",
        "event store",
        ("partition", "detach", "retention", "vacuum", "lookahead", "BRIN"),
    ),
    Subject(
        "Cost attribution for model calls",
        "finance",
        "cost tracker",
        ("tokens", "pricing", "invoice", "budget", "attribution", "cache"),
    ),
    Subject(
        "Onboarding new agent roles",
        "product",
        "agent registry",
        ("onboarding", "persona", "handoff", "escalation", "playbook", "permissions"),
    ),
    Subject(
        "Garbage collection of orphaned blobs",
        "storage",
        "artifact store",
        ("orphan", "sweep", "grace", "checksum", "multipart", "lifecycle"),
    ),
    Subject(
        "Latency budget for the review step",
        "performance",
        "review agent",
        ("latency", "percentile", "streaming", "queueing", "saturation", "deadline"),
    ),
    Subject(
        "Access control for artifact downloads",
        "security",
        "artifact API",
        ("presigned", "expiry", "audit", "tenant", "scopes", "revocation"),
    ),
    Subject(
        "Backfilling daily aggregates",
        "analytics",
        "aggregation pipeline",
        ("backfill", "watermark", "late-arriving", "percentile", "rollup", "dashboard"),
    ),
    Subject(
        "Prompt caching for long research contexts",
        "cost",
        "research agent",
        ("prefix", "caching", "eviction", "context", "hit-rate", "warmup"),
    ),
    Subject(
        "Alerting on failed pipeline runs",
        "operations",
        "scheduler",
        ("alerting", "pager", "runbook", "flapping", "threshold", "on-call"),
    ),
    Subject(
        "Deduplicating near-identical drafts",
        "quality",
        "drafting agent",
        ("shingles", "minhash", "similarity", "canonical", "dedupe", "fingerprint"),
    ),
)

ANGLES: tuple[str, ...] = (
    "failure modes",
    "prior art",
    "cost model",
    "rollout plan",
    "observability",
    "security review",
    "user impact",
    "data model",
    "testing strategy",
    "performance",
)

SENTENCES: tuple[str, ...] = (
    "The {component} already records {kw}, but nobody owns the {kw2} threshold yet.",
    "Looking at {angle}, the main question is how {kw} interacts with {kw2} under load.",
    "Three incidents in the last quarter traced back to {kw} in the {component}.",
    "Cutting {kw2} by {num}% looks reachable without touching the public contract.",
    "Teams that solved this elsewhere kept {kw} explicit and made {kw2} observable.",
    "The {area} group asked for a way to see {kw} per workflow before any change ships.",
    "Measuring {kw} before and after is cheap: the events already carry what we need.",
    "If {kw2} is left implicit, the {component} will keep surprising on-call engineers.",
    "A staged rollout behind a flag limits the blast radius of a wrong {kw} setting.",
    "The simplest version handles {kw} in one place and documents {kw2} next to it.",
    "Benchmarks on a copy of production data put the cost of {kw} at about {num} ms.",
    "Edge cases around {kw2} deserve their own tests rather than a comment.",
    "Nothing here requires a migration; {kw} fits the existing schema.",
    "From the {angle} angle, {kw} is the riskiest part and {kw2} the most visible one.",
    "Operators need one dashboard panel for {kw} and an alert on sustained {kw2}.",
    "The current behaviour around {kw} is correct but undocumented.",
    "Reviewers flagged {kw2} twice in past designs; this proposal addresses it directly.",
    "We can reuse the {component}'s existing metrics instead of adding a new exporter.",
)


@dataclass(frozen=True)
class Ticket:
    number: int
    title: str
    subject: Subject

    @property
    def area(self) -> str:
        return self.subject.area


def ticket(n: int) -> Ticket:
    """Work item ``n`` (1, 2, …): its subject cycles through :data:`SUBJECTS`."""
    if n < 1:
        raise ValueError("item numbers start at 1")
    subject = SUBJECTS[(n - 1) % len(SUBJECTS)]
    rounds = (n - 1) // len(SUBJECTS)
    title = subject.title if rounds == 0 else f"{subject.title} (round {rounds + 1})"
    return Ticket(number=n, title=title, subject=subject)


def _rng(key: str) -> random.Random:
    """A generator seeded by ``key``: the same text for the same prompt, run after run."""
    return random.Random(key)  # noqa: S311 - reproducible text, not secrets


def research_topics(n: int) -> list[str]:
    return _rng(f"topics-{n}").sample(ANGLES, 2 + n % 2)


def drafts_needed(n: int) -> int:
    return 2 if n % 3 == 1 else 1


def node_executions(n: int) -> int:
    """Node runs of item ``n``: triage, plan, one per topic, then draft + review per draft."""
    return 2 + len(research_topics(n)) + 2 * drafts_needed(n)


def search_word(n: int = 1) -> str:
    """A word item ``n``'s draft is sure to contain (for `wdp kb search`)."""
    return ticket(n).subject.keywords[0]


# --- the replies -------------------------------------------------------------------------


def _prompt(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


def _field(prompt: str, name: str) -> str:
    match = re.search(rf"^{name}: (.+)$", prompt, re.MULTILINE)
    if match is None:
        raise ValueError(f"the prompt has no {name!r} line")
    return match.group(1).strip()


def _number(prompt: str) -> int:
    match = re.search(r"^Ticket #(\d+):", prompt, re.MULTILINE)
    if match is None:
        raise ValueError("the prompt names no ticket")
    return int(match.group(1))


def _sentences(rng: random.Random, t: Ticket, angle: str, count: int) -> str:
    words = t.subject.keywords
    out = []
    for template in rng.sample(SENTENCES, count):
        kw, kw2 = rng.sample(words, 2)
        out.append(
            template.format(
                kw=kw,
                kw2=kw2,
                angle=angle,
                area=t.area,
                component=t.subject.component,
                num=rng.randint(5, 60),
            )
        )
    return " ".join(out)


def triage_reply(messages: Sequence[BaseMessage]) -> str:
    t = ticket(_number(_prompt(messages)))
    rng = _rng(f"triage-{t.number}")
    priority = rng.choice(("P1", "P2", "P2", "P3"))
    return f"category: {t.area}\npriority: {priority}\nsummary: {_sentences(rng, t, 'triage', 2)}"


def plan_reply(messages: Sequence[BaseMessage]) -> str:
    t = ticket(_number(_prompt(messages)))
    rng = _rng(f"plan-{t.number}")
    lines = [f"Plan for {t.title}. {_sentences(rng, t, 'planning', 1)}", "Research:"]
    lines += [f"- {topic}" for topic in research_topics(t.number)]
    return "\n".join(lines)


def research_reply(messages: Sequence[BaseMessage]) -> str:
    prompt = _prompt(messages)
    t = ticket(_number(prompt))
    topic = _field(prompt, "Topic")
    rng = _rng(f"research-{t.number}-{topic}")
    return "\n\n".join(
        _sentences(rng, t, topic, rng.randint(4, 6)) for _ in range(rng.randint(2, 3))
    )


def draft_reply(messages: Sequence[BaseMessage]) -> str:
    prompt = _prompt(messages)
    t = ticket(_number(prompt))
    revision = int(_field(prompt, "Revision"))
    rng = _rng(f"draft-{t.number}-{revision}")
    findings = prompt.split("Findings:\n", 1)[1].strip() if "Findings:\n" in prompt else ""
    kws = t.subject.keywords
    parts = [
        f"# {t.title}",
        f"*Ticket #{t.number} · area: {t.area} · revision {revision}*",
        "## Summary",
        _sentences(rng, t, "summary", 3),
        "## Background",
        _sentences(rng, t, "background", 4),
        "## Findings",
        findings,
        "## Proposal",
        "\n".join(f"- {_sentences(rng, t, 'proposal', 1)}" for _ in range(5)),
        "## Risks",
        "\n".join(f"- **{kw}**: {_sentences(rng, t, 'risk', 1)}" for kw in rng.sample(kws, 3)),
        "## Rollout",
        "\n".join(f"{i}. {_sentences(rng, t, 'rollout', 1)}" for i in range(1, 5)),
        "## Open questions",
        "\n".join(f"- How should the {t.subject.component} report {kw}?" for kw in kws[:3]),
    ]
    if revision > 1:
        notes = _field(prompt, "Reviewer notes")
        parts += ["## Revision notes", f"Addressed the review: {notes}"]
    return "\n\n".join(parts) + "\n"


def review_reply(messages: Sequence[BaseMessage]) -> str:
    prompt = _prompt(messages)
    t = ticket(_number(prompt))
    revision = int(_field(prompt, "Revision"))
    rng = _rng(f"review-{t.number}-{revision}")
    if revision < drafts_needed(t.number):
        score = round(rng.uniform(0.45, 0.7), 2)
        kw = rng.choice(t.subject.keywords)
        comments = f"Quantify the effect on {kw} and add a rollback step to the rollout."
    else:
        score = round(rng.uniform(0.78, 0.95), 2)
        comments = "Clear, scoped and testable. " + _sentences(rng, t, "review", 1)
    verdict = "approved" if score >= APPROVAL_THRESHOLD else "needs_changes"
    return f"score: {score}\nverdict: {verdict}\ncomments: {comments}"
