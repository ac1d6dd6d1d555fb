"""Chunking: exact offsets, word boundaries, sizes and overlap, on any text."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.kb import chunking
from sdk.kb.chunking import Chunk, split_text

PROPERTIES = settings(derandomize=True, database=None, deadline=None, max_examples=400)


def assert_well_formed(text: str, chunks: list[Chunk], *, chunk_size: int, overlap: int) -> None:
    """What every split must satisfy.

    A word is a maximal run of non-whitespace characters (``str.isspace``). Chunks never
    exceed ``chunk_size``. They start and end at word boundaries, except inside a run
    without spaces or newlines (where the splitter cannot cut) that is longer than
    ``chunk_size``: only such a run is cut inside.
    """
    if not text.strip():
        assert chunks == []
        return
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    # Covered in order: from the first non-space character to the last, no gap but space.
    assert chunks[0].start == len(text) - len(text.lstrip())
    assert chunks[-1].end == len(text.rstrip())
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        # Starts at the start of a word and ends at the end of one, or cuts a long run.
        assert (
            chunk.start == 0
            or text[chunk.start - 1].isspace()
            or run_length(text, chunk.start) > chunk_size
        )
        assert (
            chunk.end == len(text)
            or text[chunk.end].isspace()
            or run_length(text, chunk.end - 1) > chunk_size
        )
        assert chunk.text == chunk.text.strip()
        assert chunk.text
        assert len(chunk.text) <= chunk_size
    for previous, chunk in itertools.pairwise(chunks):
        assert previous.start <= chunk.start
        assert previous.end < chunk.end
        assert text[previous.end : chunk.start].strip() == ""  # no text skipped
        assert previous.end - chunk.start <= overlap  # shared at most ``overlap`` chars


def run_length(text: str, pos: int) -> int:
    """Length of the run without spaces or newlines around ``pos``."""
    start, end = pos, pos
    while start > 0 and text[start - 1] not in " \n":
        start -= 1
    while end < len(text) and text[end] not in " \n":
        end += 1
    return end - start


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        split_text("text", chunk_size=0, overlap=0)
    with pytest.raises(ValueError, match="overlap must not be negative"):
        split_text("text", chunk_size=10, overlap=-1)
    with pytest.raises(ValueError, match=r"overlap \(10\) must be smaller than chunk_size \(10\)"):
        split_text("text", chunk_size=10, overlap=10)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t \r\n"])
def test_empty_or_blank_text_has_no_chunks(text: str) -> None:
    assert split_text(text) == []


def test_short_text_is_one_chunk_without_surrounding_space() -> None:
    text = "\n  Hello world.\n\n"
    assert split_text(text) == [Chunk(ordinal=0, text="Hello world.", start=3, end=15)]


def test_paragraph_breaks_are_preferred_over_lines_and_spaces() -> None:
    paragraphs = [" ".join([f"p{i}w{j}" for j in range(12)]) for i in range(6)]  # 65 chars
    text = "\n\n".join(paragraphs)
    chunks = split_text(text, chunk_size=140, overlap=20)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[i : i + 2]) for i in range(0, 6, 2)]
    assert_well_formed(text, chunks, chunk_size=140, overlap=20)


def test_a_sentence_end_stays_with_its_sentence() -> None:
    text = "First sentence is here. Second one follows. Third closes it."
    chunks = split_text(text, chunk_size=30, overlap=0)
    assert [c.text for c in chunks] == [
        "First sentence is here.",
        "Second one follows.",
        "Third closes it.",
    ]


def test_a_run_longer_than_chunk_size_is_cut_with_overlap() -> None:
    word = "x" * 250
    text = f"before it {word} after it"
    chunks = split_text(text, chunk_size=100, overlap=10)
    assert [(c.start, c.end) for c in chunks] == [
        (0, 9),
        (10, 110),
        (100, 200),
        (190, 260),
        (261, 269),
    ]
    assert_well_formed(text, chunks, chunk_size=100, overlap=10)


def test_a_long_run_is_cut_after_punctuation_where_it_has_some() -> None:
    line = ",".join(f"field{i:03d}" for i in range(100))  # one CSV line, no spaces
    chunks = split_text(line, chunk_size=100, overlap=20)
    assert all(c.text.endswith(",") for c in chunks[:-1])
    assert all(len(c.text) <= 100 for c in chunks)
    assert_well_formed(line, chunks, chunk_size=100, overlap=20)


def test_text_without_spaces_such_as_chinese_is_cut_at_its_punctuation() -> None:
    text = "这是一个测试句子。" * 300
    chunks = split_text(text, chunk_size=100, overlap=10)
    assert all(c.text.endswith("。") for c in chunks[:-1])
    assert_well_formed(text, chunks, chunk_size=100, overlap=10)


def test_consecutive_chunks_overlap_in_long_running_text() -> None:
    text = " ".join(f"word{i:04d}" for i in range(500))  # 8-char words, one paragraph
    chunks = split_text(text, chunk_size=200, overlap=50)
    assert len(chunks) > 20
    for previous, chunk in itertools.pairwise(chunks):
        shared = previous.end - chunk.start
        assert 36 <= shared <= 50  # as many whole words as fit in 50 characters
        assert previous.text.endswith(text[chunk.start : previous.end])
    assert_well_formed(text, chunks, chunk_size=200, overlap=50)


def test_offsets_are_exact_in_repeated_text() -> None:
    # str.find would put every identical chunk at the first copy.
    text = "same words again. " * 400
    chunks = split_text(text, chunk_size=100, overlap=30)
    assert len({c.text for c in chunks}) < len(chunks)  # repeats: find alone would fail
    assert_well_formed(text, chunks, chunk_size=100, overlap=30)


@pytest.mark.parametrize("text", ["a " * 5000, "ab. " * 3000, ("a b c\n" * 5 + "\n") * 500])
def test_periodic_text_is_covered_in_order(text: str) -> None:
    chunks = split_text(text, chunk_size=50, overlap=25)
    assert_well_formed(text, chunks, chunk_size=50, overlap=25)


def test_odd_whitespace_does_not_produce_duplicate_chunks() -> None:
    # The splitter returns a chunk contained in the one before it here ("a\nbb").
    text = "a b  ba\nccbcabb  b\na\nbb    \n\nc  a\naabb\n b \nb\n b\ncb.a\nb \na\n b"
    chunks = split_text(text, chunk_size=20, overlap=13)
    assert "a\nbb" not in [c.text for c in chunks]
    assert_well_formed(text, chunks, chunk_size=20, overlap=13)


def test_when_the_search_gives_up_offsets_still_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunking, "_SEARCH_STEPS_PER_CHUNK", 0)
    monkeypatch.setattr(chunking, "_SEARCH_STEPS_BASE", 0)
    text = "ab ab ab. " * 300
    chunks = split_text(text, chunk_size=40, overlap=15)
    assert len(chunks) > 50
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


sizes = st.integers(min_value=1, max_value=120).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
)
small_alphabet_texts = st.text(alphabet=st.sampled_from(list("ab. \n\t")), max_size=600)
any_texts = st.text(max_size=400)
word_texts = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=30), max_size=150).map(
    " ".join
)


@PROPERTIES
@given(text=st.one_of(small_alphabet_texts, any_texts, word_texts), params=sizes)
def test_every_split_is_well_formed(text: str, params: tuple[int, int]) -> None:
    chunk_size, overlap = params
    chunks = split_text(text, chunk_size=chunk_size, overlap=overlap)
    assert_well_formed(text, chunks, chunk_size=chunk_size, overlap=overlap)


@PROPERTIES
@given(
    words=st.lists(st.text(alphabet="abcdef", min_size=1, max_size=9), min_size=200, max_size=400),
    chunk_size=st.integers(min_value=60, max_value=300),
)
def test_long_text_of_short_words_always_overlaps(words: list[str], chunk_size: int) -> None:
    # Words of at most 9 characters: an overlap of 20 always holds at least one whole word.
    text = " ".join(words)
    chunks = split_text(text, chunk_size=chunk_size, overlap=20)
    assert len(chunks) > 1
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.start < previous.end
        assert len(chunk.text) <= chunk_size
    assert_well_formed(text, chunks, chunk_size=chunk_size, overlap=20)
