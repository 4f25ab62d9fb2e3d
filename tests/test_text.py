from smart_suggest.text import printable


def test_plain_text_unchanged() -> None:
    for s in ["alice", "[bold]x[/bold]", "שלום", "✨ emoji 👩‍💻", "a b"]:
        assert printable(s) == s


def test_control_and_escape_sequences_made_visible() -> None:
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("t\x1b]0;title\x07") == "t\\x1b]0;title\\x07"
    assert printable("x\ny\tz\r") == "x\\x0ay\\x09z\\x0d"
    assert printable("\u202eevil") == "\\u202eevil"
    assert printable("\x9b") == "\\x9b"  # C1 CSI


def test_limit_shortens() -> None:
    assert printable("abcdef", limit=4) == "abc…"
