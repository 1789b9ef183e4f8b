"""URL slugs."""

import re


def slugify(text):
    """Lowercase ASCII words joined by dashes: "Hello, World!" -> "hello-world"."""
    text = text.strip().lower()
    text = re.sub(r"[^a-z0-9\s-]", "", text)
    return re.sub(r"\s", "-", text)
