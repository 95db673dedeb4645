"""One number format for the CLI tables and the dashboard (gateway/scoring/display.py);
tests/web/test_number_format.py checks it against the dashboard's arithmetic in chromium."""

from gateway.scoring.display import percent


def test_ties_round_half_up_as_the_dashboard_does() -> None:
    assert percent(0.9625) == "96.3%"  # Python's f"{96.25:.1f}" says 96.2
    assert percent(0.0625) == "6.3%"
    assert percent(0.1875) == "18.8%"
    assert percent(1.0) == "100.0%"
    assert percent(0.0) == "0.0%"
    assert percent(None) == "-"
    assert percent(float("nan"), missing="–") == "–"
