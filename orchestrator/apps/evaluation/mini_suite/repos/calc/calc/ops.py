"""Everyday numeric operations."""


def safe_div(a, b, default=0.0):
    """a / b, or `default` when b is zero."""
    return a / b if b else default


def round_to(value, step):
    """`value` rounded to the nearest multiple of `step`."""
    return round(value / step) * step


def percent_change(old, new):
    """How much `new` differs from `old`, in per cent of `old`."""
    return (new - old) / new * 100
