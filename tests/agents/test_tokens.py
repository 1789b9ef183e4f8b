"""Token counts, for texts of any length."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.tokens import PIECE_CHARS, count_messages, count_text, count_tools, most_tokens


def test_a_text_of_millions_of_characters_is_counted_in_pieces():
    line = "    total += compute(items[42], factor=7)  # the running total of every item\n"
    text = line * (3_000_000 // len(line))

    counted = count_text(text)

    assert abs(counted - count_text(line) * (len(text) // len(line))) <= len(text) // PIECE_CHARS + 1
    assert count_text("") == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=400), max_size=6), st.text(max_size=200))
def test_the_bound_without_encoding_is_never_below_the_count(texts: list[str], description: str) -> None:
    messages = [{"role": "user", "content": text} for text in texts]
    tools = [{"type": "function", "function": {"name": "f", "description": description, "parameters": {}}}]
    assert most_tokens(messages, tools) >= count_messages(messages) + count_tools(tools)
