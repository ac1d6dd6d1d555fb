"""The knowledge-base benchmark's corpus: ~5 KB of generated markdown per version.

A seeded RNG writes headings, paragraphs and bullet lists. About 45 % of the words are
common English function words (which the ``english`` configuration drops); the rest come
from a 60 000-word vocabulary with a Zipf-like distribution: real head words, then
made-up pronounceable ones. Every 10th artifact also gets an edited second version. The
versions are COPYed into work.artifacts / work.artifact_versions, stored inline, as if
written one by one; that set-up is not timed.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from sdk.kb import IngestOptions
from sdk.telemetry.values import new_ulid

OPTIONS = IngestOptions(chunk_size=1000, overlap=150, batch_size=200)
MIME = "text/markdown"
SEED = 7
SECOND_VERSION_EVERY = 10  # every 10th artifact also gets an edited second version
# When the generated versions were "written" (created_at), not a date anything depends on.
CLOCK_START = datetime(2026, 1, 1, tzinfo=UTC)

# --- text -------------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    return text.split()


# Function words make up ~45 % of English running text; the 'english' configuration
# drops them from the tsvector, as it would in real documents.
FUNCTION_WORDS = words_of(
    "the of and to a in is that for it as with was on be by this are from at or an "
    "which have not but can has more will if all one their there we when so been they "
    "also into than its only other some these may then would should each after about "
    "over such most any new first could our where before two how between both under "
    "through while because same used very"
)

# The head of the content vocabulary: real words of the kind wdp's artifacts hold. The
# long tail is made of pronounceable synthetic words (see ``vocabulary``).
HEAD_WORDS = words_of(
    "model data run step agent workflow report result error request time user token "
    "cost latency cache database query index table test pipeline service worker retry "
    "budget event artifact version config prompt output input review summary plan task "
    "issue change value limit batch memory network storage schema search chunk document "
    "score metric trace span log alert deploy release build failure success status node "
    "graph edge policy team owner customer account invoice payment order product price "
    "market region server client api endpoint response timeout queue message stream "
    "file disk cluster replica shard backup restore migration upgrade rollback feature "
    "flag experiment baseline benchmark throughput capacity load traffic peak average "
    "median percentile window interval daily weekly monthly quarter target goal risk "
    "incident postmortem root cause action item owner deadline estimate design proposal "
    "decision tradeoff option constraint requirement interface contract format encoding "
    "parser validator filter ranking embedding vector similarity cluster label dataset "
    "sample training evaluation accuracy precision recall threshold regression drift "
    "anomaly signal noise sensor device firmware hardware software library package "
    "dependency license security access permission role secret credential audit "
    "compliance privacy retention archive partition transaction lock commit conflict"
)

SYLLABLES = words_of(
    "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi ho "
    "ja jo ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu "
    "ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo bar ber dor "
    "fen gar han kel lin mar nor pol quin ran sel tor ul ven wil xan yor zen"
)


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """The content vocabulary, most frequent first: real head words, synthetic tail."""
    words = list(dict.fromkeys(HEAD_WORDS))
    seen = set(words) | set(FUNCTION_WORDS)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


class Corpus:
    """Deterministic markdown-ish documents of about ``size`` bytes each."""

    def __init__(self, seed: int, vocab_size: int = 60_000) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng, vocab_size)
        # Zipf-like: the word of rank r has weight 1 / (r + 2.7) ** 1.07.
        self.cum_words = cumulative([1 / (r + 2.7) ** 1.07 for r in range(len(self.words))])
        self.cum_function = cumulative([1 / (r + 1) for r in range(len(FUNCTION_WORDS))])

    def _tokens(self, n: int) -> list[str]:
        rng = self.rng
        content = rng.choices(self.words, cum_weights=self.cum_words, k=n)
        function = rng.choices(FUNCTION_WORDS, cum_weights=self.cum_function, k=n)
        return [f if rng.random() < 0.45 else c for c, f in zip(content, function, strict=True)]

    def _sentence(self) -> str:
        tokens = self._tokens(self.rng.randint(7, 22))
        tokens[0] = tokens[0].capitalize()
        if self.rng.random() < 0.3:
            cut = self.rng.randrange(2, len(tokens) - 1)
            tokens[cut] += ","
        return " ".join(tokens) + "."

    def _heading(self, level: int) -> str:
        words = self.rng.choices(self.words[:5000], k=self.rng.randint(2, 5))
        return "#" * level + " " + " ".join(words).capitalize()

    def _block(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            items = [" ".join(self._tokens(rng.randint(3, 10))) for _ in range(rng.randint(3, 6))]
            return "\n".join(f"- {item}" for item in items)
        return " ".join(self._sentence() for _ in range(rng.randint(2, 7)))

    def document(self, size: int = 4800) -> str:
        rng = self.rng
        target = rng.randint(size * 8 // 10, size * 12 // 10)
        parts = [self._heading(1)]
        length = len(parts[0])
        while length < target:
            block = self._heading(2) if rng.random() < 0.18 else self._block()
            parts.append(block)
            length += len(block) + 2
        return "\n\n".join(parts) + "\n"

    def edit(self, text: str) -> str:
        """A new version of ``text``: one paragraph rewritten and a section appended."""
        paragraphs = text.split("\n\n")
        i = self.rng.randrange(1, len(paragraphs))
        paragraphs[i] = self._block()
        paragraphs.append(self._heading(2) + "\n\n" + self._block())
        return "\n\n".join(paragraphs)


# --- set-up (not timed) -----------------------------------------------------------------

TYPES = ("report", "notes", "design", "postmortem", "runbook")


@dataclass
class Version:
    artifact_id: str
    version: int
    text: str


def make_versions(corpus: Corpus, n: int) -> list[Version]:
    """``n`` versions: new artifacts, every 10th followed by an edited second version."""
    out: list[Version] = []
    while len(out) < n:
        artifact_id = new_ulid()
        text = corpus.document()
        out.append(Version(artifact_id, 1, text))
        if len(out) % SECOND_VERSION_EVERY == 0 and len(out) < n:
            out.append(Version(artifact_id, 2, corpus.edit(text)))
    return out


def copy_versions(url: str, versions: Sequence[Version], start: datetime) -> None:
    """COPY ``versions`` as the artifact service would have stored them (inline text)."""
    latest: dict[str, int] = {}
    for v in versions:
        latest[v.artifact_id] = max(latest.get(v.artifact_id, 0), v.version)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY work.artifacts (artifact_id, type, latest_version, tags, created_at, "
            "updated_at) FROM STDIN"
        ) as copy:
            for i, (artifact_id, top) in enumerate(latest.items()):
                moment = start + timedelta(milliseconds=i)
                kind = TYPES[i % len(TYPES)]
                tags = json.dumps([f"team=t{i % 7}", f"kind={kind}"])
                copy.write_row((artifact_id, kind, top, tags, moment, moment))
        with cur.copy(
            "COPY work.artifact_versions (artifact_id, version, mime_type, size_bytes, "
            "content_hash, storage_backend, inline_content_text, preview_text, created_at) "
            "FROM STDIN"
        ) as copy:
            for i, v in enumerate(versions):
                data = v.text.encode()
                copy.write_row(
                    (
                        v.artifact_id,
                        v.version,
                        MIME,
                        len(data),
                        hashlib.sha256(data).hexdigest(),
                        "inline",
                        v.text,
                        v.text[:200],
                        start + timedelta(milliseconds=i),
                    )
                )
        conn.commit()
