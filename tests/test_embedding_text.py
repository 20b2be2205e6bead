"""Pure text helpers of the embedding scorer."""

from __future__ import annotations

from grader.embedding.text import content_stems, sentence_spans, sentences, stem


def test_stem_merges_word_forms() -> None:
    assert stem("simulates") == stem("simulation") == stem("simulate")
    assert stem("programs") == stem("programming") == stem("program")
    assert stem("classes") == stem("class")
    assert stem("behaviour") == stem("behaviours")
    assert stem("status") == "status"


def test_content_stems_drop_stop_words() -> None:
    assert content_stems("The role of a prototype in the problem") == [stem("role"), stem("prototype"), stem("problem")]


def test_sentence_spans_cover_sentences_and_list_items() -> None:
    text = "First point. Second one!\n- item a\n- item b"
    assert sentences(text) == ["First point.", "Second one!", "- item a", "- item b"]
    for s, e in sentence_spans(text):
        assert text[s:e].strip() == text[s:e]


def test_sentence_spans_of_blank_text() -> None:
    assert sentence_spans("   ") == []
    assert sentences("...") == []
