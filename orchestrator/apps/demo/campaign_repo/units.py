"""Unit conversions."""


def km_to_miles(km: float) -> float:
    return km * 1.609344


def celsius_to_fahrenheit(celsius: float) -> float:
    return celsius * 9 / 5


def kg_to_pounds(kg: float) -> float:
    return kg / 2.20462
