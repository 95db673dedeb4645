"""`make demo` as a newcomer runs it (issue 20): the demo's own lines, not pip's. A fake
Python makes the venv here, whose pip speaks as a machine's pip configuration can
(WARNINGs about an extra index) and whose `recoghub demo` only says it ran."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE_PYTHON = """#!/bin/sh
# Called as `python -m venv DIR`: make DIR/bin with a noisy pip and a quiet recoghub.
dir="$3"
mkdir -p "$dir/bin"
cat > "$dir/bin/pip" <<'PIP'
#!/bin/sh
echo "WARNING: Location '/opt/pypi-more' is ignored: it is not a directory." >&2
echo "Looking in indexes: https://pypi.org/simple, /opt/pypi-more"
[ -n "$PIP_FAILS" ] && { echo "ERROR: no matching distribution" >&2; exit 1; }
exit 0
PIP
printf '#!/bin/sh\\necho "demo ran: $*"\\n' > "$dir/bin/recoghub"
printf '#!/bin/sh\\nexit 0\\n' > "$dir/bin/python"
chmod +x "$dir/bin/pip" "$dir/bin/recoghub" "$dir/bin/python"
"""


def make_demo(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    python = tmp_path / "python3.11"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "demo", f"PYTHON={python}", "VENV=venv"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_is_not_buried_in_pip_output(tmp_path: Path) -> None:
    done = make_demo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = done.stdout + done.stderr
    assert "WARNING" not in shown and "Looking in indexes" not in shown, shown
    assert "installing recoghub into venv (pip's output: venv/pip.log)" in shown
    assert "demo ran: demo" in shown
    assert "WARNING" in (tmp_path / "venv" / "pip.log").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_failed_install_shows_pips_own_words(tmp_path: Path) -> None:
    done = make_demo(tmp_path, PIP_FAILS="1")
    assert done.returncode != 0
    assert "ERROR: no matching distribution" in done.stdout + done.stderr
