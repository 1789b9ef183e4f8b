"""Token counts, for texts of any length."""

from __future__ import annotations

from agents.tokens import PIECE_CHARS, count_text


def test_a_text_of_millions_of_characters_is_counted_in_pieces():
    line = "    total += compute(items[42], factor=7)  # the running total of every item\n"
    text = line * (3_000_000 // len(line))

    counted = count_text(text)

    assert abs(counted - count_text(line) * (len(text) // len(line))) <= len(text) // PIECE_CHARS + 1
    assert count_text("") == 0
