"""The Textual director's console."""
