import subprocess
import sys


def test_toolkits_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "toolauth", "toolkits"], capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0
    assert "slack" in out.stdout


def test_errors_are_one_line_not_a_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "toolauth", "migrate"], capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TOOLAUTH_DATABASE_URL": "mysql://x/y"},
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.startswith("toolauth: Unsupported database URL scheme 'mysql'")
    assert "Traceback" not in out.stderr


def test_serve_command_answers_health(tmp_path):
    import re

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "toolauth", "serve", "--port", "0"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # uvicorn says where it listens (the bound port, for --port 0) once it accepts
        # connections: wait for that line, not for a fixed port to answer.
        seen: list[str] = []
        for line in proc.stderr:
            seen.append(line)
            if found := re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line):
                url = found.group(1)
                break
        else:
            raise AssertionError("toolauth serve did not start:\n" + "".join(seen))
        assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{url}/link/ln_nope", timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_serve_access_log_hides_callback_codes():
    import logging

    from toolauth.connect.server import CallbackQueryFilter

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/oauth/callback?code=SECRETCODE&state=S", "1.1", 303), None,
    )  # fmt: skip
    assert CallbackQueryFilter().filter(record)
    assert "SECRETCODE" not in record.getMessage()
    assert "/oauth/callback?[redacted]" in record.getMessage()
