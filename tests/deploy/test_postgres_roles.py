"""deploy/postgres/init-roles.sh for real, as the PostgreSQL image runs it on its first start: on a
throwaway server (initdb in a temporary folder, socket logins trusted as the image does during
init, TCP logins by password), each role logs in to its own database with its password, owns it,
creates tables there, and cannot connect to the others.

Needs PostgreSQL's server programs (`initdb`, `pg_ctl`; Debian's postgresql package, which
`.ci/run` installs); skipped without them unless ``CLV_REQUIRE_POSTGRES`` is set.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from clv.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

SCRIPT = PROJECT_ROOT / "deploy" / "postgres" / "init-roles.sh"
ROLES = ("airflow", "sqlmesh", "metabase")


def server_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def as_server_user() -> dict:
    """initdb refuses to run as root: run the server as `postgres` then."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


@pytest.fixture
def server():
    initdb, pg_ctl = server_bin("initdb"), server_bin("pg_ctl")
    if not (initdb and pg_ctl and shutil.which("psql")):
        reason = (
            "PostgreSQL's server programs (initdb, pg_ctl, psql) are not installed; .ci/run installs them"
        )
        if os.environ.get("CLV_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    user = as_server_user()
    root = Path(tempfile.mkdtemp(prefix="clv-pg-"))  # not pytest's tmp_path: `postgres` must enter it
    if user:
        os.chown(root, user["user"], user["group"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = dict(check=True, capture_output=True, text=True, timeout=120, **user)
    try:
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256"]  # as the image during init
        subprocess.run([initdb, "-D", str(root / "data"), "-U", "postgres", *auth, "-E", "UTF8"], **run)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root}"
        subprocess.run(
            [pg_ctl, "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "start"], **run
        )
        yield {"socket_dir": str(root), "port": port}
    finally:
        if (root / "data" / "postmaster.pid").exists():
            subprocess.run(
                [pg_ctl, "-D", str(root / "data"), "-m", "immediate", "stop"], **{**run, "check": False}
            )
        shutil.rmtree(root, ignore_errors=True)


def test_the_init_script_gives_each_database_its_own_role(server):
    import psycopg2

    passwords = {role: secrets.token_urlsafe(32) for role in ROLES}
    env = {
        **os.environ,
        "PGHOST": server["socket_dir"],
        "PGPORT": str(server["port"]),
        "POSTGRES_USER": "postgres",
        **{f"{role.upper()}_DB_PASSWORD": pw for role, pw in passwords.items()},
    }
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    def connect(role: str, database: str, password: str | None = None):
        return psycopg2.connect(
            host="127.0.0.1",
            port=server["port"],
            user=role,
            password=password or passwords[role],
            dbname=database,
            connect_timeout=5,
        )

    for role in ROLES:
        con = connect(role, role)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(
                "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, pg_get_userbyid(d.datdba) "
                "FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()"
            )
            assert cur.fetchone() == (False, False, False, role)
            cur.execute(
                "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datdba = "
                "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
            )
            assert cur.fetchone() == (role,)  # owns its database and no other
            cur.execute("CREATE SCHEMA probe; CREATE TABLE probe.t (x int); INSERT INTO probe.t VALUES (1)")
        con.close()
        for other in ROLES:
            if other != role:
                with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
                    connect(role, other)
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            connect(role, role, password=passwords[role][::-1])
