"""Alerts that reach people: Slack and e-mail, to the owners of what broke, once per open problem.

``CLV_ALERT_HOOK`` hands every alert to code of your own; this module is the ready-made
alternative beside it. What it sends:

- every alert ``clv.ops.alert`` records (a failed task, a missed deadline, a warning such as a
  file quarantined whole), and
- at the end of each layer's checks (``layer_checked``, called by the layer steps): every failed
  or warned Soda check, every scan error and every metric outside its anomaly band, each with its
  observed value and what was expected.

**A problem** has a fingerprint (kind, dataset, check or task). While it stays open it is sent
once, then again at most every ``CLV_NOTIFY_REMIND_HOURS`` (with how often it was seen since);
when it clears (the layer's checks pass it again, the task succeeds), one "resolved" message
(``CLV_NOTIFY_RESOLVED``). The state is a small JSON file beside ``alerts.jsonl``
(``notify_state.json``), so grouping survives restarts and a warehouse that is busy or broken;
a problem not seen for ``STALE_DAYS`` is forgotten. Every message sent is appended to
``notifications.jsonl``, delivered or not.

**Who gets it**: the owners file (``CLV_NOTIFY_OWNERS``, YAML; ``load_owners``) maps shell
patterns over a problem's names (its dataset ``raw.orders``, its check or metric, its task) to
e-mail addresses and Slack webhooks; every matching rule's recipients get the alert, and the
``default`` owner gets what no rule matches (without a file: ``CLV_NOTIFY_EMAIL_TO`` and the
default Slack webhook). One message per recipient and call: a layer with three failed checks
sends each owner one message listing them.

**How**: Airflow's provider hooks, ``SlackWebhookHook`` (over ``slack_sdk``) and ``SmtpHook``
(over ``smtplib``), on a connection taken from ``CLV_SLACK_WEBHOOK_URL`` / ``CLV_SMTP_*`` or
from an Airflow connection (``CLV_SLACK_CONN_ID`` / ``CLV_SMTP_CONN_ID``: the metadata database,
a secrets backend or ``AIRFLOW_CONN_*``). Airflow's notifier classes wrap the same hooks for
callbacks; the owners and the grouping here need the hooks themselves.

**Never in the way**: nothing is sent, and no file written, when nothing is configured; delivery
runs in a thread the caller waits for at most ``CLV_NOTIFY_TIMEOUT_SECONDS``; a failure or a hang
is logged, never raised, and a problem whose message reached nobody is tried again next time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import fnmatch
import html
import importlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clv import reports, settings

log = logging.getLogger("clv")

STATE_FILE = "notify_state.json"
LOG_FILE = "notifications.jsonl"
STALE_DAYS = 7  # an open problem not seen for this long is forgotten (it comes back as new)
LOCK_WAIT_SECONDS = 5.0
SEVERITY_LABEL = {"error": "FAIL", "warning": "WARN"}
LABELS = {"FAIL": "failed", "WARN": "warned", "RESOLVED": "resolved"}  # a message's subject counts them
CHECK_KINDS = ("check", "scan", "anomaly")  # the kinds a layer's checks open and resolve


@dataclass(frozen=True)
class Problem:
    """Something wrong that someone should hear of, with everything its one line needs."""

    kind: str  # task | check | scan | anomaly
    subject: str  # the task (dag.task), the check's name, or the metric (layer.table.metric)
    severity: str  # error | warning
    detail: str  # what was seen, against what was expected
    dataset: str | None = None  # layer.table
    layer: str | None = None
    task: str | None = None
    business_date: dt.date | None = None
    report: str | None = None  # a URL, or the report's path

    @property
    def fingerprint(self) -> str:
        return f"{self.kind}|{self.dataset or ''}|{self.subject}|{self.severity}"

    @property
    def names(self) -> tuple[str, ...]:
        """What the owners file's patterns are matched against."""
        return tuple(n for n in (self.dataset, self.subject, self.task) if n)

    @property
    def what(self) -> str:
        """What broke, and where: ``check "orders.quantity not below 1" on raw.orders``."""
        what = {
            "check": f'check "{self.subject}"',
            "scan": f"{self.layer} scan",
            "anomaly": f"anomaly {self.subject}",
            "task": f"task {self.subject}",
        }.get(self.kind, self.subject)
        return what + (f" on {self.dataset}" if self.dataset and self.kind in ("check",) else "")

    def line(self) -> str:
        """The one-line summary: severity, what, where, business date, observed vs expected."""
        day = f", business date {self.business_date}" if self.business_date else ""
        return f"[{SEVERITY_LABEL.get(self.severity, self.severity.upper())}] {self.what}{day}: {self.detail}"


# --- who gets what ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    name: str
    match: tuple[str, ...] = ()
    email: tuple[str, ...] = ()
    slack: tuple[str, ...] = ()  # "default", a webhook URL, or an Airflow connection id


@dataclass(frozen=True)
class Owners:
    rules: tuple[Owner, ...]
    default: Owner

    def of(self, problem: Problem) -> list[Owner]:
        """Every rule one of the problem's names matches; the default owner when none does."""
        found = [
            o for o in self.rules if any(fnmatch.fnmatchcase(n, p) for p in o.match for n in problem.names)
        ]
        return found or [self.default]


def _strings(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise settings.SettingError(f"{where} must be a list of strings")
    return tuple(v.strip() for v in value)


def _owner(entry, where: str, default_name: str) -> Owner:
    if not isinstance(entry, dict):
        raise settings.SettingError(f"{where} must be a mapping with match, email and slack")
    unknown = set(entry) - {"name", "match", "email", "slack"}
    if unknown:
        raise settings.SettingError(
            f"{where} has unknown keys {sorted(unknown)}; use name, match, email, slack"
        )
    emails = _strings(entry.get("email"), f"{where}.email")
    bad = [a for a in emails if not re.fullmatch(r"[^@\s]+@[^@\s]+", a)]
    if bad:
        raise settings.SettingError(f"{where}.email holds {bad[0]!r}, which is not an e-mail address")
    return Owner(
        name=str(entry.get("name") or default_name),
        match=_strings(entry.get("match"), f"{where}.match"),
        email=emails,
        slack=_strings(entry.get("slack"), f"{where}.slack"),
    )


def load_owners(conf: settings.Notify) -> Owners:
    """The owners file, or (without one) a default owner made of ``CLV_NOTIFY_EMAIL_TO`` and the
    default Slack webhook. A malformed file is a ``SettingError`` naming what is wrong.

    .. code-block:: yaml

        default:                       # what no rule matches
          email: [data-platform@example.com]
          slack: [default]             # the webhook of CLV_SLACK_WEBHOOK_URL / CLV_SLACK_CONN_ID
        owners:
          - name: orders team
            match: ["raw.orders", "*.stg_orders", "*order*"]   # datasets, checks, metrics, tasks
            email: [orders@example.com]
            slack: [clv_slack_orders]  # an Airflow connection id, or a webhook URL
    """
    env_default = Owner(
        name="default",
        email=conf.email_to,
        slack=("default",) if conf.slack else (),
    )
    if conf.owners_file is None:
        return Owners((), env_default)
    import yaml

    where = f"CLV_NOTIFY_OWNERS ({conf.owners_file})"
    try:
        doc = yaml.safe_load(conf.owners_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise settings.SettingError(f"{where} cannot be read: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict) or set(doc) - {"default", "owners"}:
        raise settings.SettingError(f"{where} must be a mapping with the keys default and owners")
    rules = doc.get("owners") or []
    if not isinstance(rules, list):
        raise settings.SettingError(f"{where}: owners must be a list")
    owners = tuple(_owner(r, f"{where} owners[{i}]", f"owner {i + 1}") for i, r in enumerate(rules))
    no_match = [o.name for o in owners if not o.match]
    if no_match:
        raise settings.SettingError(f"{where}: owner {no_match[0]!r} has no match patterns")
    default = _owner(doc["default"], f"{where} default", "default") if doc.get("default") else env_default
    return Owners(owners, default)


# --- where it goes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One destination: an e-mail address or a Slack webhook."""

    channel: str  # email | slack
    address: str  # the e-mail address; "default", a webhook URL or an Airflow connection id

    def __str__(self) -> str:
        if self.channel == "slack" and "://" in self.address:
            return "slack " + re.sub(r"(//[^/]+/).*", r"\1…", self.address)  # never the token
        return f"{self.channel} {self.address}"


def targets_of(owners: list[Owner], conf: settings.Notify) -> list[Target]:
    out: list[Target] = []
    for o in owners:
        if conf.smtp:
            out += [Target("email", a) for a in o.email]
        out += [Target("slack", s) for s in o.slack if s != "default" or conf.slack]
    return list(dict.fromkeys(out))


def _slack_hook(address: str, conf: settings.Notify):
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    timeout = max(1, int(conf.timeout_seconds))
    if address == "default" and conf.slack_conn_id and not conf.slack_webhook_url:
        address = conf.slack_conn_id
    url = conf.slack_webhook_url if address == "default" else address
    if "://" not in url:  # an Airflow connection id
        return SlackWebhookHook(slack_webhook_conn_id=url, timeout=timeout)
    from airflow.sdk import Connection

    conn = Connection(conn_id="clv_slack_url", conn_type="slackwebhook", password=url)

    class UrlHook(SlackWebhookHook):
        """The provider's hook on a webhook URL of the environment or the owners file."""

        def get_connection(self, conn_id):  # type: ignore[override]
            return conn

    return UrlHook(slack_webhook_conn_id=conn.conn_id, timeout=timeout)


def _smtp_hook(conf: settings.Notify):
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    if not conf.smtp_host:
        return SmtpHook(smtp_conn_id=conf.smtp_conn_id)
    from airflow.sdk import Connection

    conn = Connection(
        conn_id="clv_smtp_env",
        conn_type="smtp",
        host=conf.smtp_host,
        port=conf.smtp_port,
        login=conf.smtp_user,
        password=conf.smtp_password,
        extra=json.dumps(
            {
                "from_email": conf.smtp_from,
                "disable_ssl": conf.smtp_security != "ssl",
                "disable_tls": conf.smtp_security != "starttls",
                "timeout": max(1, int(conf.timeout_seconds)),
                "retry_limit": 0,
            }
        ),
    )

    class EnvHook(SmtpHook):
        """The provider's hook on the ``CLV_SMTP_*`` settings."""

        def get_connection(self, conn_id):  # type: ignore[override]
            return conn

    return EnvHook(smtp_conn_id=conn.conn_id)


@dataclass
class Message:
    target: Target
    subject: str  # the one line (the e-mail's subject, the Slack message's first line)
    lines: list[str] = field(default_factory=list)  # one per problem, when there are several
    fingerprints: list[str] = field(default_factory=list)
    delivered: bool = False
    error: str | None = None

    def text(self) -> str:
        return "\n".join([self.subject, *(f"• {line}" for line in self.lines)])


def _send(message: Message, conf: settings.Notify) -> None:
    if message.target.channel == "slack":
        _slack_hook(message.target.address, conf).send_text(message.text())
        return
    body = "".join(f"<p>{html.escape(line)}</p>" for line in [message.subject, *message.lines])
    hook = _smtp_hook(conf)
    with hook:  # connects and logs in; closes the connection after
        hook.send_email_smtp(
            to=[message.target.address],
            subject=message.subject[:250],
            html_content=f"<html><body>{body}<p>-- clv</p></body></html>",
        )


def deliver(messages: list[Message], conf: settings.Notify) -> list[Message]:
    """Send the messages in a thread of their own, waiting at most ``timeout_seconds`` for all
    of them; what did not get through says why (``error``). Never raises."""
    if not messages:
        return messages
    try:  # imported before the clock starts: a first import of Airflow takes seconds
        if any(m.target.channel == "slack" for m in messages):
            importlib.import_module("airflow.providers.slack.hooks.slack_webhook")
        if any(m.target.channel == "email" for m in messages):
            importlib.import_module("airflow.providers.smtp.hooks.smtp")
    except ImportError as e:
        for m in messages:
            m.error = f"the notifier is not installed: {e}"
        log.error("clv: cannot notify: %s", e)
        return messages

    def run() -> None:
        for m in messages:
            try:
                _send(m, conf)
                m.delivered = True
            except BaseException as e:  # a notifier's failure is logged, never raised
                m.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]

    thread = threading.Thread(target=run, name="clv-notify", daemon=True)
    thread.start()
    thread.join(conf.timeout_seconds)
    for m in messages:
        if not m.delivered and m.error is None:
            m.error = f"no answer within {conf.timeout_seconds:g} s"
        if m.error:
            log.error("clv: could not notify %s: %s", m.target, m.error)
    return messages


# --- grouping --------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """An exclusive lock on the state file between processes, waited for at most
    ``LOCK_WAIT_SECONDS``; past that, carry on without it (a duplicate beats a lost alert)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / (STATE_FILE + ".lock")).open("a") as f:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        locked = False
        while not locked:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except OSError:
                if time.monotonic() > deadline:
                    log.error("clv: %s stayed locked; notifying without it", STATE_FILE)
                    break
                time.sleep(0.05)
        try:
            yield
        finally:
            if locked:
                fcntl.flock(f, fcntl.LOCK_UN)


def read_state(data_dir: Path) -> dict[str, dict]:
    """The open problems by fingerprint (empty when none, or when the file is unreadable)."""
    path = data_dir / STATE_FILE
    try:
        return json.loads(path.read_text()).get("open", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as e:
        log.error("clv: %s is unreadable (%s); starting afresh", path, e)
        return {}


def _write_state(data_dir: Path, state: dict[str, dict], now: dt.datetime) -> None:
    stale = (now - dt.timedelta(days=STALE_DAYS)).isoformat()
    state = {k: v for k, v in state.items() if v["last_seen"] >= stale}
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps({"open": state}, indent=1, sort_keys=True))
    tmp.replace(data_dir / STATE_FILE)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _decide(
    state: dict[str, dict],
    problems: list[Problem],
    resolved: list[str],
    conf: settings.Notify,
    now: dt.datetime,
) -> tuple[list[tuple[Problem, str]], list[dict]]:
    """Update the open problems with what was seen; return what to send: (problem, its line)
    for new problems and due reminders, and the records of problems that cleared."""
    send: list[tuple[Problem, str]] = []
    for p in problems:
        entry = state.get(p.fingerprint)
        if entry is None:
            state[p.fingerprint] = {
                "line": p.line(),
                "what": p.what,
                "names": list(p.names),
                "kind": p.kind,
                "layer": p.layer,
                "task": p.task,
                "first_seen": _iso(now),
                "last_seen": _iso(now),
                "last_sent": _iso(now),
                "seen": 1,
                "sent": 1,
            }
            send.append((p, p.line()))
            continue
        entry.update(line=p.line(), last_seen=_iso(now), seen=entry["seen"] + 1)
        last = dt.datetime.fromisoformat(entry["last_sent"]) if entry.get("last_sent") else None
        if last is None or now - last >= dt.timedelta(hours=conf.remind_hours):
            entry.update(last_sent=_iso(now), sent=entry.get("sent", 0) + 1)
            since = entry["first_seen"][:16].replace("T", " ")
            send.append((p, f"{p.line()} (still open since {since}, seen {entry['seen']} times)"))
    cleared = [dict(state.pop(f), fingerprint=f) for f in resolved if f in state]
    return send, cleared


# --- the entry points ------------------------------------------------------------------------


def _settings() -> settings.Notify | None:
    try:
        conf = settings.notify_settings()
    except settings.SettingError as e:  # a malformed setting must not mask the failure alerted
        log.error("clv: notifications are off: %s", e)
        return None
    return conf if conf.configured else None


def notify(
    problems: list[Problem],
    *,
    resolved: list[str] | None = None,
    data_dir: Path | None = None,
    now: dt.datetime | None = None,
    title: str | None = None,
) -> list[Message]:
    """Send the problems (and the clearing of ``resolved`` fingerprints) to their owners, grouped
    with what is already open. Returns the messages tried. Never raises."""
    try:
        conf = _settings()
        if conf is None:
            return []
        return _notify(conf, problems, resolved or [], settings.paths(data_dir).data_dir, now, title)
    except Exception as e:  # never in place of the failure being alerted
        log.error("clv: notifying failed: %s: %s", type(e).__name__, e)
        return []


def _notify(conf, problems, resolved, data_dir, now, title) -> list[Message]:
    now = now or dt.datetime.now()
    if conf.level == "error":
        problems = [p for p in problems if p.severity == "error"]
    if not problems and not resolved:
        return []
    owners = load_owners(conf)
    with _locked(data_dir):
        state = read_state(data_dir)
        before = {k: dict(v) for k, v in state.items()}
        send, cleared = _decide(state, problems, resolved, conf, now)
        _write_state(data_dir, state, now)
    by_target: dict[Target, Message] = {}
    for p, line in send:
        for t in targets_of(owners.of(p), conf):
            m = by_target.setdefault(t, Message(t, ""))
            m.lines.append(line)
            m.fingerprints.append(p.fingerprint)
    if conf.resolved:
        for entry in cleared:
            since = entry["first_seen"][:16].replace("T", " ")
            line = f"[RESOLVED] {entry['what']}: clear again (open since {since}, seen {entry['seen']} times)"
            for t in targets_of(_owners_of_names(owners, entry.get("names") or []), conf):
                m = by_target.setdefault(t, Message(t, ""))
                m.lines.append(line)
                m.fingerprints.append(entry["fingerprint"])
    messages = list(by_target.values())
    for m in messages:
        if len(m.lines) == 1:
            m.subject, m.lines = m.lines[0], []
        else:
            counts = {label: sum(line.startswith(f"[{label}]") for line in m.lines) for label in LABELS}
            m.subject = f"{title or 'clv'}: " + ", ".join(
                f"{counts[label]} {word}" for label, word in LABELS.items() if counts[label]
            )
    deliver(messages, conf)
    _log(data_dir, messages, now)
    reached = {f for m in messages if m.delivered for f in m.fingerprints}
    unsent = {p.fingerprint for p, _ in send} - reached
    if unsent:  # tried again at the next occurrence
        with _locked(data_dir):
            state = read_state(data_dir)
            for f in unsent:
                if f in state:
                    old = before.get(f)
                    state[f]["last_sent"] = old.get("last_sent") if old else None
                    state[f]["sent"] = old.get("sent", 0) if old else 0
            _write_state(data_dir, state, now)
    return messages


def _owners_of_names(owners: Owners, names: list[str]) -> list[Owner]:
    found = [o for o in owners.rules if any(fnmatch.fnmatchcase(n, p) for p in o.match for n in names)]
    return found or [owners.default]


def _log(data_dir: Path, messages: list[Message], now: dt.datetime) -> None:
    try:
        with (data_dir / LOG_FILE).open("a") as f:
            for m in messages:
                record = {
                    "sent_at": _iso(now),
                    "to": str(m.target),
                    "subject": m.subject,
                    "lines": m.lines,
                    "fingerprints": m.fingerprints,
                    "delivered": m.delivered,
                    "error": m.error,
                }
                f.write(json.dumps(record) + "\n")
    except OSError as e:
        log.error("clv: could not append to %s: %s", LOG_FILE, e)


def report_link(path: str | Path | None, data_dir: Path | None = None) -> str | None:
    """The one link to a report, for alerts, a task's summary line and a run's note: under
    ``CLV_REPORTS_URL`` when it is set and the report lies in the reports folder; else, for a
    layer's report (``<run>/<layer>.md`` in that folder), the dashboard's page of it
    (``CLV_DASHBOARD_URL``, ``clv.reports.dashboard_link``) unless that is ``none``; else the
    file's path. A link that is already a URL is kept."""
    if path is None:
        return None
    if re.match(r"https?://", str(path)):
        return str(path)
    path = Path(path)
    folder = settings.paths(data_dir).reports
    try:
        base = settings.notify_settings().reports_url
    except settings.SettingError:
        base = None
    if base:
        with contextlib.suppress(ValueError):
            return base.rstrip("/") + "/" + path.resolve().relative_to(folder).as_posix()
    try:
        dashboard = settings.dashboard_url()
    except settings.SettingError:
        dashboard = None
    key = reports.key_of(path, folder) if dashboard else None
    return reports.dashboard_link(key, dashboard) if key else str(path)


def alert(record: dict, *, data_dir: Path | None = None, report: Path | None = None) -> list[Message]:
    """An alert of ``clv.ops.alert`` (a failed task, a missed deadline, a warning): one problem of
    its task, grouped with that task's earlier alerts of the same severity until it succeeds. The
    report link: a report the summary names, else ``report`` (the run's folder) when it exists,
    else ``alerts.jsonl``."""
    try:
        return _alert(record, data_dir, report)
    except Exception as e:  # never in place of the failure being alerted
        log.error("clv: notifying the alert failed: %s: %s", type(e).__name__, e)
        return []


def _alert(record: dict, data_dir: Path | None, report: Path | None) -> list[Message]:
    if _settings() is None:
        return []
    named = re.search(r"\(report: ([^)\s]+)\)", record.get("summary") or "")
    paths = settings.paths(data_dir)
    link = named.group(1) if named else str(report) if report and report.exists() else None
    dag, task = record.get("dag_id"), record.get("task_id")
    day = record.get("business_date")
    problem = Problem(
        kind="task",
        subject=f"{dag}.{task}" if dag else (task or "clv"),
        severity="warning" if record.get("severity") == "warning" else "error",
        detail=_without_report(record.get("summary") or "")
        + f" — report: {report_link(link or paths.data_dir / 'alerts.jsonl', data_dir)}",
        task=task,
        business_date=dt.date.fromisoformat(day) if day else None,
    )
    return notify([problem], data_dir=data_dir, title=problem.subject)


def _without_report(summary: str) -> str:
    return re.sub(r"\s*\(report: [^)]*\)", "", summary).strip()


def task_succeeded(dag_id: str, task_id: str, *, data_dir: Path | None = None) -> list[Message]:
    """The task ran through: its open failure (an error-level alert) is resolved. Never raises."""
    try:
        if _settings() is None:
            return []
        data = settings.paths(data_dir).data_dir
        if not (data / STATE_FILE).exists():
            return []
        fingerprint = Problem("task", f"{dag_id}.{task_id}", "error", "").fingerprint
        if fingerprint not in read_state(data):
            return []
        return notify([], resolved=[fingerprint], data_dir=data_dir, title=f"{dag_id}.{task_id}")
    except Exception as e:
        log.error("clv: notifying %s.%s's success failed: %s", dag_id, task_id, e)
        return []


def layer_checked(
    layer: str,
    business_date: dt.date,
    result,
    verdicts: list | None = None,
    *,
    data_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> list[Message]:
    """The end of a layer's checks (a ``clv.quality.ScanResult`` and the day's anomaly verdicts):
    failed and warned checks, scan errors and anomalies go to their owners; the layer's open
    problems that did not come back are resolved. Never raises."""
    try:
        if _settings() is None:
            return []
        problems = layer_problems(layer, business_date, result, verdicts or [], data_dir)
        open_now = read_state(settings.paths(data_dir).data_dir)
        seen = {p.fingerprint for p in problems}
        resolved = [
            f
            for f, e in open_now.items()
            if e.get("layer") == layer and e.get("kind") in CHECK_KINDS and f not in seen
        ]
        return notify(
            problems,
            resolved=resolved,
            data_dir=data_dir,
            now=now,
            title=f"{layer} checks, business date {business_date}",
        )
    except Exception as e:
        log.error("clv: notifying the %s checks failed: %s: %s", layer, type(e).__name__, e)
        return []


def layer_problems(
    layer: str, business_date: dt.date, result, verdicts: list, data_dir=None
) -> list[Problem]:
    """A layer's failed and warned checks, scan errors and anomalies, as problems."""
    from clv import anomalies

    link = report_link(result.report, data_dir)
    rules = _rules(result.soda_results)
    skip = set(anomalies.check_names(layer))  # sent metric by metric, from the verdicts
    out = []
    for c in [*result.failed, *result.warned]:
        if c["name"] in skip:
            continue
        samples = [r["explanation"] for r in result.samples.get(c["name"]) or [] if r.get("explanation")]
        seen = f"value {c['value']:g}" if isinstance(c["value"], int | float) else "failed"
        rule = rules.get(c["name"])
        detail = (
            seen + (f" (rule: {rule})" if rule else "") + (f"; {'; '.join(samples[:3])}" if samples else "")
        )
        out.append(
            Problem(
                kind="check",
                subject=c["name"],
                severity="error" if c["outcome"] == "fail" else "warning",
                detail=f"{detail} — report: {link}",
                dataset=f"{layer}.{c['dataset']}" if c.get("dataset") else layer,
                layer=layer,
                business_date=business_date,
                report=link,
            )
        )
    if result.errors:
        out.append(
            Problem(
                kind="scan",
                subject=f"{layer} scan errors",
                severity="error",
                detail=f"{len(result.errors)} errors, first: {result.errors[0][:200]} — report: {link}",
                dataset=layer,
                layer=layer,
                business_date=business_date,
                report=link,
            )
        )
    for v in verdicts:
        if v.status not in (anomalies.FAIL, anomalies.WARN):
            continue
        out.append(
            Problem(
                kind="anomaly",
                subject=v.name,
                severity="error" if v.status == anomalies.FAIL else "warning",
                detail=f"{v.explanation()} — report: {link}",
                dataset=f"{v.layer}.{v.dataset}",
                layer=layer,
                business_date=business_date,
                report=link,
            )
        )
    return out


def _rules(soda_results: dict) -> dict[str, str]:
    """Each check's rule as written (its definition's first line and its warn/fail lines)."""
    out = {}
    for c in (soda_results or {}).get("checks", []):
        text = c.get("definition") or ""
        lines = [
            s.strip().lstrip("- ")
            for s in text.splitlines()
            if s.strip() and not s.strip().startswith(("checks for ", "name:", "filter "))
        ]
        if not lines or not c.get("name"):
            continue
        head = lines[0].rstrip(":")
        levels = [s for s in lines[1:] if s.startswith(("warn:", "fail:"))]
        out[c["name"]] = ", ".join([head, *levels])[:200]
    return out


def send_test(*, data_dir: Path | None = None) -> list[Message]:
    """One test message to every destination the settings and the owners file name (`clv notify
    --test`). Raises ``SettingError`` when a setting is malformed or nothing is configured."""
    conf = settings.notify_settings()
    if not conf.configured:
        raise settings.SettingError(
            "no notifier is configured: set CLV_SLACK_WEBHOOK_URL or CLV_SMTP_HOST (or CLV_SLACK_CONN_ID, "
            "CLV_SMTP_CONN_ID) and CLV_NOTIFY_EMAIL_TO or CLV_NOTIFY_OWNERS"
        )
    owners = load_owners(conf)
    targets = targets_of([owners.default, *owners.rules], conf)
    if not targets:
        raise settings.SettingError(
            "no recipient: a channel is set up but no owner has an address on it (CLV_NOTIFY_EMAIL_TO, "
            "the owners file's email and slack)"
        )
    data = settings.paths(data_dir).data_dir
    messages = [Message(t, f"[TEST] clv notifications reach {t} (data directory {data})") for t in targets]
    deliver(messages, conf)
    with contextlib.suppress(OSError):
        data.mkdir(parents=True, exist_ok=True)
    _log(data, messages, dt.datetime.now())
    return messages
