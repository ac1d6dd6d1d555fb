"""Extracted text as overlapping chunks that know where they came from.

langchain's RecursiveCharacterTextSplitter decides the cuts: at paragraph breaks first,
then lines, then sentence ends, then spaces, never inside a word. It returns strings only
(its ``add_start_index`` is a plain ``str.find`` and goes wrong on repeated text), so
:func:`split_text` locates each chunk itself, using what the splitter guarantees:

* a chunk starts after whitespace and ends before whitespace (or at an end of the text);
* it starts no earlier than the chunk before it, and no earlier than ``overlap``
  characters before that chunk's end;
* it starts no later than the first non-space character after that chunk's end, since
  every non-space character of the text is in some chunk.

In ordinary text exactly one position satisfies these. In repetitive text ("a a a ...")
several do; a search with backtracking then picks positions that satisfy them all, with
the last chunk ending where the text does, so the chunks still cover the text in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from langchain_text_splitters import RecursiveCharacterTextSplitter

# No "" separator: a word longer than chunk_size stays whole, as an oversized chunk.
SEPARATORS = ("\n\n", "\n", ". ", " ")

_NON_SPACE = re.compile(r"\S")
# The search budget: ordinary text takes one step per chunk.
_SEARCH_STEPS_PER_CHUNK = 64
_SEARCH_STEPS_BASE = 1000


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of the extracted text; ``text == source[start:end]``."""

    ordinal: int
    text: str
    start: int  # char offset into the extracted text (inclusive)
    end: int  # exclusive


def split_text(text: str, *, chunk_size: int = 1000, overlap: int = 150) -> list[Chunk]:
    """``text`` in chunks of at most ``chunk_size`` characters (a longer word stays whole),
    consecutive chunks sharing up to ``overlap`` characters so that a sentence cut in two
    is still found whole in one of them."""
    _check(chunk_size=chunk_size, overlap=overlap)
    if not text.strip():
        return []
    pieces = [p.strip() for p in _splitter(chunk_size, overlap).split_text(text)]
    pieces = [p for p in pieces if p]  # oversized words come back unstripped
    starts = _place(text, pieces, overlap=overlap)
    chunks: list[Chunk] = []
    for piece, start in zip(pieces, starts, strict=True):
        end = start + len(piece)
        if chunks and end <= chunks[-1].end:
            continue  # inside the previous chunk: whitespace-only splits can cause this
        chunks.append(Chunk(ordinal=len(chunks), text=piece, start=start, end=end))
    return chunks


def _check(*, chunk_size: int, overlap: int) -> None:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if overlap < 0:
        raise ValueError(f"overlap must not be negative, got {overlap}")
    if overlap >= chunk_size:
        raise ValueError(f"overlap ({overlap}) must be smaller than chunk_size ({chunk_size})")


@lru_cache(maxsize=16)
def _splitter(chunk_size: int, overlap: int) -> RecursiveCharacterTextSplitter:
    """One splitter per setting: building one compiles its separators, and it is reusable.

    ``keep_separator="end"`` leaves ". " with the sentence it ends instead of starting
    the next chunk with it.
    """
    return RecursiveCharacterTextSplitter(
        separators=list(SEPARATORS),
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=overlap,
    )


def _place(text: str, pieces: list[str], *, overlap: int) -> list[int]:
    """The start of every piece in ``text`` (see the module docstring).

    A depth-first search: take the first position that fits, back up when a later piece
    has none. Failed (piece, position) pairs are remembered, and the search gives up after
    a budget of steps (only adversarial repetition could get there), falling back to a
    plain forward search, which still keeps ``text[start:end] == piece``.
    """
    if not pieces:
        return []
    first = _next_non_space(text, 0)
    stack: list[Iterator[int]] = [iter(_fits(text, pieces[0], first, first))]
    chosen: list[int] = []
    failed: set[tuple[int, int]] = set()
    last_end = len(text.rstrip())
    budget = _SEARCH_STEPS_PER_CHUNK * len(pieces) + _SEARCH_STEPS_BASE
    while stack and budget > 0:
        budget -= 1
        level = len(stack) - 1
        start = next((s for s in stack[-1] if (level, s) not in failed), None)
        if start is None:
            stack.pop()
            if chosen:
                failed.add((level - 1, chosen.pop()))
            continue
        chosen.append(start)
        end = start + len(pieces[level])
        if level + 1 < len(pieces):
            low = max(start, end - overlap)
            high = _next_non_space(text, end)
            stack.append(_candidates(text, pieces[level + 1], low, high, overlap=overlap))
        elif end == last_end:
            return chosen
        else:
            failed.add((level, chosen.pop()))
    return _place_greedily(text, pieces, overlap=overlap)


def _candidates(text: str, piece: str, low: int, high: int, *, overlap: int) -> Iterator[int]:
    """Starts in [low, high], the likeliest first: the splitter keeps as much overlap as
    fits, counted back from the end of the previous piece including its trailing space."""
    guess = max(low, high - overlap)
    yield from _fits(text, piece, guess, high)
    yield from reversed(list(_fits(text, piece, low, guess - 1)))


def _fits(text: str, piece: str, low: int, high: int) -> Iterator[int]:
    """Positions in [low, high] where ``piece`` occurs between whitespace (or text ends)."""
    pos = text.find(piece, low, high + len(piece))
    while pos != -1:
        end = pos + len(piece)
        if (pos == 0 or text[pos - 1].isspace()) and (end == len(text) or text[end].isspace()):
            yield pos
        pos = text.find(piece, pos + 1, high + len(piece))


def _place_greedily(text: str, pieces: list[str], *, overlap: int) -> list[int]:
    """Each piece where it first occurs past the previous one's overlap window."""
    starts: list[int] = []
    start, end = -1, 0
    for piece in pieces:
        for low in (max(start + 1, end - overlap), max(start, 0), 0):
            if (found := text.find(piece, low)) != -1:
                break
        start, end = found, found + len(piece)
        starts.append(start)
    return starts


def _next_non_space(text: str, pos: int) -> int:
    match = _NON_SPACE.search(text, pos)
    return match.start() if match is not None else len(text)
