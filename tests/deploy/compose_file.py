"""docker-compose.yaml as compose reads it, without a Docker engine: the YAML (PyYAML resolves the
anchors and `<<` merge keys) and compose's variable interpolation, so a test can ask what a service
gets from a given .env, and whether compose would refuse to start at all."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import yaml

from clv.settings import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
# A variable of .env that holds a secret, by its name.
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|_KEY)$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class MissingVariable(Exception):
    """``${VAR:?message}`` (or ``${VAR?message}``) met an unset or empty variable: compose refuses
    to start."""

    def __init__(self, name: str, message: str):
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (comments and blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def secret_names() -> list[str]:
    """The secrets .env.example asks for."""
    return sorted(name for name in read_env_file() if SECRET_NAME.search(name))


def strong_env() -> dict[str, str]:
    """.env.example with every secret filled in as its comments say to."""
    env = read_env_file()
    for name in secret_names():
        env[name] = secrets.token_urlsafe(32)
    from cryptography.fernet import Fernet

    env["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    return env


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ``$$`` is a literal ``$``; ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}``,
    with defaults that may themselves hold variables."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            value, i = _braced(text, i + 2, env)
            out.append(value)
        elif m := _NAME.match(text, i + 1):
            out.append(env.get(m[0], ""))
            i = m.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _braced(text: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    name = _NAME.match(text, i)[0]
    i += len(name)
    op = next((o for o in _OPERATORS if text.startswith(o, i)), "")
    i += len(op)
    depth, j = 1, i
    while depth:
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    arg, value = text[i : j - 1], env.get(name)
    is_set, non_empty = value is not None, bool(value)
    if op in (":?", "?") and not (non_empty if op == ":?" else is_set):
        raise MissingVariable(name, arg)
    if (op == ":-" and not non_empty) or (op == "-" and not is_set):
        return interpolate(arg, env), j
    if op in (":+", "+"):
        return (interpolate(arg, env) if (non_empty if op == ":+" else is_set) else ""), j
    return value or "", j


def resolve(node, env: dict[str, str]):
    """The compose model with every string interpolated (compose does not interpolate keys)."""
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node


def env_of(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}
