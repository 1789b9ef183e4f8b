"""Text helpers for titles, slugs and previews."""
