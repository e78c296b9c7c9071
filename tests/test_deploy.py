"""The deployment files in deploy/: the crontab line as sh runs it, one environment file read
the same way by systemd and a shell, and nginx's configuration (checked by nginx when it is
installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

DEPLOY = ROOT / "deploy"
ENV_FILE = "/etc/iomfeed/env"


def cron_command() -> str:
    (line,) = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    fields = line.split(None, 6)
    assert fields[5] == "iomfeed"  # /etc/cron.d format: the user field
    return fields[6]


@pytest.mark.parametrize(
    ("code", "stderr", "mailed", "exit_code"),
    [
        (0, "", "", 0),  # success: silent, nothing for cron to mail
        (1, "iom-albania: FAILED\n", "iom-albania: FAILED\n", 1),
        (75, "another iomfeed run is using ...\n", "", 0),  # still going after the wait: dropped
    ],
)
def test_the_crontab_line_mails_only_real_problems_and_leaves_no_file(
    tmp_path: Path, code: int, stderr: str, mailed: str, exit_code: int
) -> None:
    command = cron_command()
    assert "/tmp/" not in command and "%" not in command  # cron reads % as a newline
    home = tmp_path / "srv"
    (home / "venv" / "bin").mkdir(parents=True)
    fake = home / "venv" / "bin" / "iomfeed"
    fake.write_text(
        f'#!/bin/sh\n[ "$IOMFEED_CONFIG" = /x/config.toml ] || exit 9\n'
        f'printf "{stderr}" >&2\nexit {code}\n'
    )
    fake.chmod(0o755)
    env_file = tmp_path / "env"
    env_file.write_text("IOMFEED_CONFIG=/x/config.toml\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    command = command.replace("/srv/iomfeed", str(home)).replace(ENV_FILE, str(env_file))
    result = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], "TMPDIR": str(temp)},
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (exit_code, "", mailed)
    assert list(temp.iterdir()) == []  # the private stderr file is gone


def test_one_environment_file_read_the_same_by_systemd_and_a_shell(tmp_path: Path) -> None:
    example = (DEPLOY / "env.example").read_text()
    values = {}
    for line in example.splitlines():
        if not line or line.startswith("#"):
            continue
        # What both read identically: no quoting, expansion, escapes or comments in values.
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*=[^\s\"'$`\\#]*", line), line
        name, _, value = line.partition("=")
        values[name] = value
    assert {"IOMFEED_CONFIG", "IOMFEED_SECRET", "IOMFEED_SMTP_PASSWORD"} <= set(values)
    path = tmp_path / "env"
    path.write_text(example)
    shell = subprocess.run(
        ["sh", "-c", f"set -a; . {path}; set +a; env"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"]},
        check=True,
    )
    seen = dict(line.partition("=")[::2] for line in shell.stdout.splitlines())
    assert {k: seen.get(k) for k in values} == values
    # Every deploy file that needs the secrets reads this one file.
    for name in ("iomfeed.service", "iomfeed-run.service"):
        assert f"EnvironmentFile={ENV_FILE}\n" in (DEPLOY / name).read_text()
    assert f". {ENV_FILE} " in cron_command()


def test_nginx_uses_http2_on_and_redirects_port_80() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    assert not re.search(r"^\s*listen[^;]*\bhttp2\b", text, re.M)  # deprecated in 1.25.1
    assert re.search(r"^\s*http2 on;", text, re.M)
    plain = text[: text.index("listen 443")]
    assert "listen 80;" in plain and "return 301 https://$host$request_uri;" in plain


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    version = subprocess.run(
        ["nginx", "-v"], capture_output=True, text=True, timeout=30, check=False
    ).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version)
    assert found, version
    text = (DEPLOY / "nginx.conf").read_text()
    if tuple(map(int, found.groups())) < (1, 25, 1):
        text = text.replace("http2 on;", "")  # older nginx: only this line is unknown
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=feeds.example.org",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    text = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {tmp_path}/cert.pem;", text)
    text = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {tmp_path}/key.pem;", text)
    (tmp_path / "site.conf").write_text(text)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; include {tmp_path}/site.conf; }}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-q", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
