"""Safe defaults: DEBUG never reaches beyond this machine; production passes check --deploy."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from config.security import refuse_public_debug_bind, runserver_addresses

REPO = Path(__file__).resolve().parents[1]
BASE_ENV = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, env=BASE_ENV | env, capture_output=True, text=True, timeout=timeout
    )


def django_setup(env: dict[str, str], code: str = "") -> subprocess.CompletedProcess:
    script = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; import django;"
        f"django.setup(); from django.conf import settings as s; {code}"
    )
    return run([sys.executable, "-c", script], env)


def readme_production_env() -> dict[str, str]:
    """The production values the README lists (between its production-env markers)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- production-env -->\s*```sh\n(.*?)```", text, flags=re.S)
    assert block, "README: the production values block is missing"
    values = {}
    for line in block.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = value
    return values


def test_readme_production_values_pass_check_deploy_silently():
    env = readme_production_env()
    assert env["DEBUG"] == "0"
    env["SECRET_KEY"] = secrets.token_urlsafe(50)  # the README says how to make one
    out = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.strip() == "System check identified no issues (0 silenced)."


def test_production_is_https_only_by_default():
    env = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "x.org"}
    out = django_setup(
        env,
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, getattr(s, 'SECURE_PROXY_SSL_HEADER', None))",
    )
    assert out.stdout.split() == ["True", "31536000", "True", "True", "None"], out.stderr


def test_forwarded_proto_is_trusted_only_behind_a_declared_proxy():
    env = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "x.org"}
    out = django_setup(env | {"TANYS_BEHIND_PROXY": "1"}, "print(s.SECURE_PROXY_SSL_HEADER)")
    assert out.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", out.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    out = django_setup({"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50)})
    assert out.returncode != 0 and "ALLOWED_HOSTS must be set" in out.stderr


@pytest.mark.parametrize("hosts", ["tanys.example.org", "*", "127.0.0.1,192.168.1.20"])
def test_debug_refuses_a_non_local_allowed_host(hosts):
    out = django_setup({"ALLOWED_HOSTS": hosts})
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr and "DEBUG is on" in out.stderr


def test_debug_with_local_hosts_starts():
    out = django_setup({"ALLOWED_HOSTS": "localhost,127.0.0.1,[::1]"}, "print(s.DEBUG)")
    assert out.stdout.strip() == "True", out.stderr


@pytest.mark.parametrize("addrport", ["0.0.0.0:8000", "0:8000", "[::]:8000", "10.0.0.5:80"])
def test_runserver_with_debug_refuses_a_public_address(addrport, tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    out = run([sys.executable, "manage.py", "runserver", addrport, "--noreload"], env, 30)
    assert out.returncode != 0
    assert "DEBUG is on, so the server may listen only on this machine" in out.stderr


def test_runserver_addresses_and_the_loopback_rule():
    assert runserver_addresses(["manage.py", "runserver"]) == ["127.0.0.1:8000"]
    assert runserver_addresses(["manage.py", "runserver", "-6"]) == ["[::1]:8000"]
    assert runserver_addresses(["manage.py", "runserver", "--noreload", "8001"]) == ["8001"]
    for address in ("127.0.0.1:8000", "8001", "[::1]:8000", "localhost:8000", "unix:/tmp/s"):
        refuse_public_debug_bind(debug=True, addresses=[address], default_host="127.0.0.1")
    refuse_public_debug_bind(debug=False, addresses=["0.0.0.0:80"], default_host="0.0.0.0")


def test_gunicorn_with_debug_refuses_a_public_bind(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "TANYS_BIND": "0.0.0.0:18765"}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    out = run([gunicorn, "-c", "config/gunicorn.conf.py", "config.wsgi:application"], env, 60)
    assert out.returncode != 0
    assert "DEBUG is on, so the server may listen only on this machine" in out.stderr


def test_image_and_compose_default_to_production():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ENV .*\bDEBUG=0\b", dockerfile, flags=re.M)
    assert 'CMD ["gunicorn", "-c", "config/gunicorn.conf.py"' in dockerfile
    compose = (REPO / "docker-compose.yml").read_text()
    assert 'DEBUG: "0"' in compose
