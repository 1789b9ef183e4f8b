"""Unit conversions for lengths and temperatures."""
