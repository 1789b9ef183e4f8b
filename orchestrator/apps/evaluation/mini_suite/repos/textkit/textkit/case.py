"""Headline casing."""

# Words a headline keeps in lower case, unless they come first.
SMALL_WORDS = {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to"}


def title_case(text):
    """Capitalise the first letter of every word, leaving the rest of each word as it is."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split())
