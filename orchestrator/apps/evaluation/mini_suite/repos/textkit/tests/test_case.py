from textkit.case import title_case


def test_title_case_basic():
    assert title_case("hello world") == "Hello World"
