"""``make test`` checks what it needs first (scripts/test-deps, issue 16).

Missing Debian packages are installed with apt-get when possible; otherwise one line says
what is missing and how to get it. Driven with a fake browser path and a fake apt-get.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "test-deps"


def run(tmp_path: Path, apt: str, chromium: Path, valgrind: str = sys.executable) -> subprocess.CompletedProcess[str]:
    with socket.socket() as listener:  # something answers at SPIKEDETECT_KAFKA: Java/Maven are not needed
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        env = {**os.environ, "SPIKEDETECT_CHROMIUM": str(chromium), "SPIKEDETECT_APT_GET": apt,
               "SPIKEDETECT_VALGRIND": valgrind,
               "SPIKEDETECT_KAFKA": f"127.0.0.1:{listener.getsockname()[1]}"}  # fmt: skip
        return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
                              check=False)  # fmt: skip


def test_a_missing_browser_without_apt_is_one_line(tmp_path: Path) -> None:
    res = run(tmp_path, str(tmp_path / "no-apt-get"), tmp_path / "no-chromium")
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing chromium" in lines[0] and "apt-get install -y chromium" in lines[0]


def test_a_missing_browser_is_installed_with_apt_get(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    log = tmp_path / "apt.log"
    fake = tmp_path / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n'
                    f'case "$1" in install) printf "#!/bin/sh\\n" > {browser}; chmod +x {browser};; esac\n')  # fmt: skip
    fake.chmod(0o755)
    if os.geteuid() != 0:  # without root the script needs password-less sudo: then it reports instead
        assert run(tmp_path, str(fake), browser).returncode in (0, 1)
        return
    res = run(tmp_path, str(fake), browser)
    assert res.returncode == 0, res.stderr
    assert "install -y -qq chromium" in log.read_text() and browser.exists()
    again = run(tmp_path, str(fake), browser)  # present now: nothing to do
    assert again.returncode == 0 and again.stderr == "" and log.read_text().count("install") == 1


def test_a_missing_valgrind_is_named_with_the_browser(tmp_path: Path) -> None:
    res = run(tmp_path, str(tmp_path / "no-apt-get"), tmp_path / "no-chromium", str(tmp_path / "no-valgrind"))
    assert res.returncode == 1
    assert "missing chromium valgrind" in res.stderr and "apt-get install -y chromium valgrind" in res.stderr


def test_a_failed_install_says_what_is_missing(tmp_path: Path) -> None:
    fake = tmp_path / "apt-get"
    fake.write_text("#!/bin/sh\nexit 100\n")
    fake.chmod(0o755)
    res = run(tmp_path, str(fake), tmp_path / "no-chromium")
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("make test: missing chromium")


def test_make_test_runs_the_check_before_pytest() -> None:
    res = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True)
    lines = [line.strip() for line in res.stdout.splitlines()]
    assert "scripts/test-deps" in lines and lines.index("scripts/test-deps") < next(
        i for i, line in enumerate(lines) if line.endswith("/pytest"))
