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

# No "" separator: the splitter never cuts inside a word. A "word" longer than
# chunk_size (minified code, a CSV line, text without spaces such as Chinese) is cut
# afterwards by _cut_oversized, at punctuation where it can.
SEPARATORS = ("\n\n", "\n", ". ", " ")

_NON_SPACE = re.compile(r"\S")
_PUNCTUATION = (",", ";", "|", ".", "\u3002", "\uff0c", "\u3001", ")", "}", "]", ">", "/", "\t")
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
    """``text`` in chunks of at most ``chunk_size`` characters, consecutive chunks sharing
    up to ``overlap`` characters so that a sentence cut in two is still found whole in one
    of them. Cuts fall between words; only a run of more than ``chunk_size`` characters
    without whitespace is cut inside (at punctuation if it has any), since one huge chunk
    would rank and display badly and could exceed Postgres' tsvector limit."""
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
        for cut_start, cut_end in _cut_oversized(text, start, end, chunk_size, overlap):
            chunks.append(
                Chunk(
                    ordinal=len(chunks),
                    text=text[cut_start:cut_end],
                    start=cut_start,
                    end=cut_end,
                )
            )
    return chunks


def _cut_oversized(
    text: str, start: int, end: int, chunk_size: int, overlap: int
) -> Iterator[tuple[int, int]]:
    """[start, end) itself, or windows of at most ``chunk_size`` that overlap by up to
    ``overlap``, each ending after the last punctuation in its second half if any."""
    if end - start <= chunk_size:
        yield start, end
        return
    pos, last_end = start, start
    while pos < end:
        stop = min(pos + chunk_size, end)
        if stop < end:
            low = max(pos + chunk_size // 2, last_end)
            cut = max((text.rfind(p, low, stop) for p in _PUNCTUATION), default=-1)
            if cut != -1:
                stop = cut + 1
        trimmed = stop
        while trimmed > pos and text[trimmed - 1].isspace():
            trimmed -= 1
        if trimmed > last_end:  # else all of it is in the window before
            yield pos, trimmed
            last_end = trimmed
        if stop >= end:
            return
        pos = max(last_end - overlap, pos + 1)
        while pos < end and text[pos].isspace():
            pos += 1


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
