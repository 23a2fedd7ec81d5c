"""Delivery for real: to a folder, to an HTTP server and to an SMTP server (STARTTLS, login)
started by the tests on 127.0.0.1, through the real CLI. Nothing twice, nothing lost, no secret
anywhere it could leak."""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import io
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from python_calamine import CalamineWorkbook

from builders import base_county, make_id, member
from ports import on_a_free_port, port_down

TOKEN = "tok-9f8e7d6c5b4a-SECRET"  # noqa: S105 - a test secret, to be found nowhere
SMTP_USER = "clerk-user-SECRET"
PASSWORD = "pw-1a2b3c4d-SECRET"  # noqa: S105
ENV = {"EXITCHECK_TOKEN_AGRI": TOKEN, "EXITCHECK_SMTP_USER": SMTP_USER, "EXITCHECK_SMTP_PASSWORD": PASSWORD}
SECRETS = (TOKEN, SMTP_USER, PASSWORD)
H = [f"51343400{n:04d}" for n in range(1, 7)]
AGRI_COLUMNS = ["household_id", "village", "income_per_capita", "special"]


# ---- a real HTTP inbox ----

class Inbox:
    """What the department's server received; `answers` are the statuses to give, in turn."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[int] = []
        self.echo_auth = False
        self.say: dict[str, str] = {}  # more fields of the JSON answer
        self.hold = 0.0  # seconds each POST is held before its answer: its sender stays mid-send
        self.released = threading.Event()  # set: held POSTs are answered at once

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


class _InboxHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        inbox: Inbox = self.server.inbox  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        inbox.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        inbox.released.wait(inbox.hold)
        status = inbox.answers.pop(0) if inbox.answers else 201
        answer = {"id": f"receipt-{len(inbox.requests)}"}
        answer.update(inbox.say)
        if inbox.echo_auth:  # a careless server that repeats the credentials in its error page
            answer["detail"] = f"bad credentials {self.headers.get('Authorization')}"
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class HttpServer:
    """A real HTTP(S) server on 127.0.0.1: on `port`, or with port 0 on one the system picks
    (bound at once, so no other test can take it in between)."""

    def __init__(self, inbox: Inbox, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _InboxHandler)
        self.port: int = self.server.server_address[1]
        self.server.inbox = inbox  # type: ignore[attr-defined]
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def http_port(inbox: Inbox) -> Iterator[int]:
    server = HttpServer(inbox)
    yield server.port
    inbox.released.set()
    server.stop()


# ---- a real SMTP server with STARTTLS and login ----

@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[bytes] = []
        self.refuse: set[str] = set()  # addresses answered "no such mailbox"; the others get the message

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802 - aiosmtpd's protocol
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's protocol
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins.append(auth_data.login)
        good = auth_data.login == SMTP_USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=good, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_port(mailbox: Mailbox, certificate) -> Iterator[int]:
    def start(port: int) -> Controller:
        controller = Controller(
            mailbox, hostname="127.0.0.1", port=port, tls_context=server_tls(certificate), require_starttls=True,
            authenticator=mailbox.authenticate, auth_require_tls=True,
        )
        controller.start()
        return controller

    controller, port = on_a_free_port(start)
    yield port
    controller.stop()


# ---- the workspace ----

def county():
    """Six households: four in the default bands, one able-bodied unemployed, one disabled."""
    county = base_county()
    for row, income in zip(county.households, [4200, 4500, 5000, 4199.99, 3000, 8000], strict=True):
        row["人均纯收入"] = income
    county.members[10]["务工状况"] = "未务工"  # household 4 (4199.99): can work, has no work
    county.members[0]["健康状况"] = "残疾"  # household 1 (4200)
    county.households[4]["贫困户属性"] = "低保贫困户"
    return county


CONFIG = """\
registers: data/registers.xlsx
as_of: 2020-06-30
out: reports
departments:
  civil-affairs:
    name: 民政局
    columns: [household_id, township, village, head_name, household_size, income_per_capita, special]
    deliver: {{type: dir, path: outbox/civil-affairs}}
  agriculture-rural:
    name: 农业农村局
    columns: [household_id, village, income_per_capita, special]
    deliver: {{type: http, url: "{scheme}://127.0.0.1:{http_port}/inbox?src=exitcheck", token_env: EXITCHECK_TOKEN_AGRI,
              retries: 2, backoff: 0.01, timeout: 5{http_extra}}}
  human-resources:
    name: 人社局
    bands: [below_4200, 4200_4500]
    where: labour_unemployed > 0 or disabled_members > 0
    deliver: {{type: email, host: 127.0.0.1, port: {smtp_port}, starttls: true, ca_file: {ca_file}, from: fupin@yuexi.example,
              to: [renshe@yuexi.example], username_env: EXITCHECK_SMTP_USER, password_env: EXITCHECK_SMTP_PASSWORD,
              retries: 1, timeout: 5}}
"""


def make_workspace(root: Path, *, http_port: int, smtp_port: int, certificate, scheme: str = "http", http_extra: str = "") -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    county().write(root / "data" / "registers.xlsx")
    (root / "exitcheck.yaml").write_text(CONFIG.format(
        http_port=http_port, smtp_port=smtp_port, ca_file=certificate[0], scheme=scheme, http_extra=http_extra,
    ), encoding="utf-8")
    return root


@pytest.fixture
def workspace(tmp_path, http_port, smtp_port, certificate) -> Path:
    return make_workspace(tmp_path, http_port=http_port, smtp_port=smtp_port, certificate=certificate)


#: stdout and stderr of every push, per workspace, for the leak check.
outputs: dict[Path, list[str]] = {}


def push(run_cli, root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    done = run_cli("bands", "--push-to", "all", *args, cwd=root, env=ENV if env is None else env)
    outputs.setdefault(root, []).append(done.stdout + done.stderr)
    return done


def assert_no_secret_leaked(root: Path) -> None:
    """Not in the ledger's bytes, not in any file the runs wrote (inside workbooks too), not on
    stdout or stderr."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = b"".join(archive.read(name) for name in archive.namelist())
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} in {path}"
    for text in outputs.get(root, []):
        for secret in SECRETS:
            assert secret not in text


def outbox(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "outbox" / "civil-affairs").iterdir()) if (root / "outbox").exists() else []


def ledger(run_cli, root: Path, *args: str) -> dict:
    done = run_cli("deliveries", "--json", *args, cwd=root)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ---- the tests ----

def test_push_delivers_to_a_folder_an_http_server_and_an_smtp_server(workspace, run_cli, inbox, mailbox, http_port):
    done = push(run_cli, workspace)
    assert done.returncode == 0, done.stderr
    # the folder: <dept>-<as_of>-<digest12>.xlsx and .json, complete, owner-only
    files = outbox(workspace)
    assert len(files) == 2 and files[0].startswith("civil-affairs-2020-06-30-")
    stem = files[0].rsplit(".", 1)[0]
    assert files == [f"{stem}.json", f"{stem}.xlsx"]
    listed = json.loads((workspace / "outbox" / "civil-affairs" / f"{stem}.json").read_text(encoding="utf-8"))
    assert stem.endswith(listed["digest"][:12])
    rows = [h for band in listed["bands"] for h in band["households"]]
    assert {h["household_id"] for h in rows} == {H[0], H[1], H[3], H[4]}
    assert all(list(h) == ["household_id", "township", "village", "head_name", "household_size", "income_per_capita", "special"] for h in rows)
    assert (workspace / "outbox" / "civil-affairs" / f"{stem}.xlsx").stat().st_mode & 0o777 == 0o600
    # HTTP: one POST, the bearer token, the digest as idempotency key, only the configured columns
    assert len(inbox.requests) == 1
    request = inbox.requests[0]
    assert request["path"] == "/inbox?src=exitcheck"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"].startswith("application/json")
    body = inbox.bodies[0]
    assert re.fullmatch(r"[0-9a-f]{64}", body["digest"])
    assert request["headers"]["Idempotency-Key"] == idempotency_key("agriculture-rural", f"http://127.0.0.1:{http_port}/inbox", body["digest"])
    assert body["schema"] == "exitcheck/bands@1" and body["as_of"] == "2020-06-30"
    assert body["department"] == {"id": "agriculture-rural", "name": "农业农村局"}
    posted = [h for band in body["bands"] for h in band["households"]]
    assert {h["household_id"] for h in posted} == {H[0], H[1], H[3], H[4]}
    assert all(list(h) == AGRI_COLUMNS for h in posted)
    assert "户主1" not in request["body"].decode() and "head_name" not in request["body"].decode()
    # e-mail: over STARTTLS with login, one message, the workbook attached with the rows
    assert len(mailbox.messages) == 1 and mailbox.logins == [SMTP_USER.encode()]
    message = mailbox.messages[0]
    assert "人社局" in message["Subject"] and "2020-06-30" in message["Subject"] and "共 2 户" in message["Subject"]
    assert mailbox.envelopes[0][1] == ["renshe@yuexi.example"]
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1 and attachments[0].get_filename().endswith(".xlsx")
    assert attachments[0].get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = CalamineWorkbook.from_filelike(io.BytesIO(attachments[0].get_content()))
    assert book.sheet_names == ["汇总", "4200元以下", "4200-4500元"]
    low = book.get_sheet_by_name("4200元以下").to_python()
    middle = book.get_sheet_by_name("4200-4500元").to_python()
    assert [row[0] for row in low[2:]] == [H[3]] and [row[0] for row in middle[2:]] == [H[0]]
    # the ledger: one delivered attempt per department, with its receipt
    attempts = ledger(run_cli, workspace)["attempts"]
    receipts = {a["department"]: (a["outcome"], a["receipt"], a["rows"]) for a in attempts}
    assert receipts["civil-affairs"] == ("delivered", str(workspace / "outbox" / "civil-affairs" / f"{stem}.xlsx"), 4)
    assert receipts["agriculture-rural"] == ("delivered", "HTTP 201 id=receipt-1", 4)
    assert receipts["human-resources"][0] == "delivered" and receipts["human-resources"][1] == message["Message-ID"]
    assert_no_secret_leaked(workspace)


def test_the_same_push_twice_delivers_once_and_a_changed_income_delivers_again(workspace, run_cli, inbox, mailbox):
    assert push(run_cli, workspace).returncode == 0
    files = outbox(workspace)
    again = push(run_cli, workspace)
    assert again.returncode == 0, again.stderr
    assert len(inbox.requests) == 1 and len(mailbox.messages) == 1 and outbox(workspace) == files
    assert again.stdout.count("未变化") == 3
    later = push(run_cli, workspace, "--as-of", "2020-07-31")  # a new night, the same content
    assert later.returncode == 0 and len(inbox.requests) == 1 and len(mailbox.messages) == 1
    changed = county()
    changed.households[4]["人均纯收入"] = 3100  # household 5: in civil affairs' and agriculture's lists only
    changed.write(workspace / "data" / "registers.xlsx")
    third = push(run_cli, workspace)
    assert third.returncode == 0, third.stderr
    assert len(inbox.requests) == 2 and len(mailbox.messages) == 1  # human resources: not its household
    assert inbox.requests[1]["headers"]["Idempotency-Key"] != inbox.requests[0]["headers"]["Idempotency-Key"]
    assert len(outbox(workspace)) == 4
    outcomes = [a["outcome"] for a in ledger(run_cli, workspace)["attempts"]]
    assert outcomes.count("delivered") == 5 and outcomes.count("unchanged") == 7
    assert_no_secret_leaked(workspace)


def test_a_server_down_fails_alone_and_the_next_run_delivers_the_missed_list_once(tmp_path, run_cli, inbox, mailbox, smtp_port, certificate):
    with port_down() as port:  # nothing listens there tonight
        root = make_workspace(tmp_path, http_port=port, smtp_port=smtp_port, certificate=certificate)
        down = push(run_cli, root)
    assert down.returncode == 5
    assert "agriculture-rural" in down.stderr and "无法连接" in down.stderr
    assert len(outbox(root)) == 2 and len(mailbox.messages) == 1  # the others went out
    server = HttpServer(inbox, port)  # the server is back
    try:
        up = push(run_cli, root)
        assert up.returncode == 0, up.stderr
        assert len(inbox.requests) == 1
        assert len(outbox(root)) == 2 and len(mailbox.messages) == 1  # not sent twice
        once = push(run_cli, root)
        assert once.returncode == 0 and len(inbox.requests) == 1
    finally:
        server.stop()
    agri = [a["outcome"] for a in ledger(run_cli, root)["attempts"] if a["department"] == "agriculture-rural"]
    assert agri == ["unchanged", "delivered", "failed"]  # newest first
    assert_no_secret_leaked(root)


def test_a_missing_token_variable_fails_that_department_alone_and_names_it(workspace, run_cli, inbox, mailbox):
    env = {k: v for k, v in ENV.items() if k != "EXITCHECK_TOKEN_AGRI"}
    done = push(run_cli, workspace, env={**env, "EXITCHECK_TOKEN_AGRI": ""})
    assert done.returncode == 5
    assert "EXITCHECK_TOKEN_AGRI" in done.stderr and "agriculture-rural" in done.stderr
    assert inbox.requests == [] and len(mailbox.messages) == 1 and len(outbox(workspace)) == 2
    failed = [a for a in ledger(run_cli, workspace)["attempts"] if a["outcome"] == "failed"]
    assert [a["department"] for a in failed] == ["agriculture-rural"] and "EXITCHECK_TOKEN_AGRI" in failed[0]["error"]
    assert push(run_cli, workspace).returncode == 0 and len(inbox.requests) == 1


def test_a_token_with_a_trailing_newline_is_named_as_invalid_and_not_sent_or_retried(workspace, run_cli, inbox):
    for lang, words in (("en", "cannot go in an HTTP header"), ("zh", "不能用作 HTTP 头")):
        done = run_cli("bands", "--push-to", "agriculture-rural", "--lang", lang, cwd=workspace,
                       env={**ENV, "EXITCHECK_TOKEN_AGRI": TOKEN + "\n"})
        assert done.returncode == 5, done.stdout + done.stderr
        assert words in done.stderr and "EXITCHECK_TOKEN_AGRI" in done.stderr
        assert "cannot connect" not in done.stdout + done.stderr and TOKEN not in done.stdout + done.stderr
    assert inbox.requests == []  # nothing sent, nothing retried
    dry = run_cli("bands", "--push-to", "agriculture-rural", "--dry-run", "--lang", "en", cwd=workspace,
                  env={**ENV, "EXITCHECK_TOKEN_AGRI": TOKEN + "\n"})
    assert "cannot go in an HTTP header" in dry.stderr
    assert [a["outcome"] for a in ledger(run_cli, workspace)["attempts"]] == ["failed", "failed"]


def test_no_secret_reaches_the_ledger_logs_or_outputs_even_when_servers_repeat_it(workspace, run_cli, inbox, mailbox):
    inbox.echo_auth = True
    inbox.answers = [401]
    wrong = {**ENV, "EXITCHECK_SMTP_PASSWORD": "wrong-" + PASSWORD}
    done = push(run_cli, workspace, "--lang", "en", env=wrong)
    assert done.returncode == 5
    assert "HTTP 401" in done.stderr and "login refused" in done.stderr and "***" in done.stderr
    assert len(inbox.requests) == 1  # a 4xx is not retried
    errors = [a["error"] for a in ledger(run_cli, workspace)["attempts"] if a["error"]]
    assert len(errors) == 2 and all(TOKEN not in e for e in errors)
    ledger_bytes = (workspace / ".exitcheck" / "deliveries.sqlite").read_bytes()
    assert b"SECRET" not in ledger_bytes  # no part of any secret, right or wrong
    assert_no_secret_leaked(workspace)


def test_an_id_number_in_the_receivers_answer_is_masked_wherever_it_is_shown_or_stored(workspace, run_cli, inbox, http_port):
    quoted = "513434197205221633"
    inbox.answers = [400]
    inbox.say = {"error": f"row rejected: id_number {quoted} already registered"}
    refused = run_cli("bands", "--push-to", "agriculture-rural", "--lang", "en", cwd=workspace, env={**ENV, "COLUMNS": "300"})
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "513434********1633" in refused.stdout and "513434********1633" in refused.stderr
    # A 2xx whose receipt id is an ID number: masked too.
    inbox.say = {"id": quoted}
    done = run_cli("bands", "--push-to", "agriculture-rural", "--lang", "en", cwd=workspace, env={**ENV, "COLUMNS": "300"})
    assert done.returncode == 0, done.stdout + done.stderr
    table = run_cli("deliveries", "--lang", "en", cwd=workspace, env={"COLUMNS": "300"})
    document = ledger(run_cli, workspace, "--lang", "en")
    assert [(a["outcome"], a["receipt"], a["error"]) for a in document["attempts"]] == [
        ("delivered", "HTTP 201 id=513434********1633", None),
        ("failed", None, f"HTTP 400 from http://127.0.0.1:{http_port}/inbox: "
                         '{"id": "receipt-1", "error": "row rejected: id_number 513434********1633 already registered"}'),
    ]
    assert "513434********1633" in table.stdout
    for text in (refused.stdout, refused.stderr, done.stdout, table.stdout, json.dumps(document)):
        assert quoted not in text
    assert quoted.encode() not in (workspace / ".exitcheck" / "deliveries.sqlite").read_bytes()


def test_the_ledger_masks_id_numbers_it_is_given_and_those_an_older_version_stored(tmp_path):
    from exitcheck.delivery.ledger import FAILED, open_ledger
    from exitcheck.i18n import Bilingual

    quoted = "513434197205221633"
    with open_ledger(tmp_path) as book:
        book.claim(attempt_id="a1", run_id=None, department="d", transport="http", target="t", digest="0" * 64, rows=1, as_of=None)
        book.finish("a1", FAILED, error=Bilingual(f"拒收 {quoted}", f"HTTP 400: {quoted} refused"), receipt=f"id={quoted}")
        with contextlib.closing(sqlite3.connect(tmp_path / "deliveries.sqlite")) as older, older:  # as an older version wrote it
            older.execute("INSERT INTO attempts (attempt_id, department, transport, target, digest, rows, started_at,"
                          " outcome, error) VALUES ('old', 'd', 'http', 't', '', 1, '2020-01-01T00:00:00+00:00', 'failed', ?)",
                          (f"HTTP 400: {quoted} refused",))
        attempts = book.attempts()
    assert [(a.error, a.receipt) for a in attempts] == [
        (Bilingual.same("HTTP 400: 513434********1633 refused"), None),
        (Bilingual("拒收 513434********1633", "HTTP 400: 513434********1633 refused"), Bilingual.same("id=513434********1633"))]
    assert (tmp_path / "deliveries.sqlite").read_bytes().count(quoted.encode()) == 1  # the older row's, as it was


#: What the two failures of the test below are called in each language, as the push says them
#: and as `exitcheck deliveries` lists them later.
FAILURE_WORDS = {"zh": ("返回 HTTP 500", "服务器拒绝登录(535)"), "en": ("HTTP 500 from", "login refused (535)")}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_failed_delivery_is_told_in_the_language_asked_then_and_later(workspace, run_cli, inbox, http_port, lang):
    """The push speaks its --lang (Chinese by default); the ledger keeps both languages, so that
    `exitcheck deliveries` lists the failure in the language it is asked for, whichever the push
    spoke. The receiver's own words would be quoted as they are."""
    inbox.answers = [500, 500]  # both tries of agriculture's list
    wrong = {**ENV, "EXITCHECK_SMTP_PASSWORD": "wrong-" + PASSWORD, "COLUMNS": "400"}
    done = push(run_cli, workspace, *(["--lang", "en"] if lang == "en" else []), env=wrong)
    assert done.returncode == 5, done.stdout + done.stderr
    other = "en" if lang == "zh" else "zh"
    for words in FAILURE_WORDS[lang]:
        assert words in done.stdout and words in done.stderr, (words, done.stdout + done.stderr)
    assert not [words for words in FAILURE_WORDS[other] if words in done.stdout + done.stderr]
    target = f"http://127.0.0.1:{http_port}/inbox"
    for asked in ("zh", "en"):
        errors = {a["department"]: a["error"] for a in ledger(run_cli, workspace, "--lang", asked)["attempts"] if a["error"]}
        http_error, mail_error = FAILURE_WORDS[asked]
        answer = ': {"id": "receipt-2"}'  # the server's answer to the second try, quoted
        assert errors["agriculture-rural"] == (f"{target} 返回 HTTP 500{answer}" if asked == "zh" else f"HTTP 500 from {target}{answer}")
        assert errors["human-resources"].endswith(f": {mail_error}") and len(errors) == 2
        table = run_cli("deliveries", "--lang", asked, cwd=workspace, env={"COLUMNS": "400"})
        assert http_error in table.stdout and mail_error in table.stdout, table.stdout
        assert not [words for words in FAILURE_WORDS["en" if asked == "zh" else "zh"] if words in table.stdout]
        outcomes = {"zh": ("失败", "已投递"), "en": ("FAILED", "delivered")}  # each row's outcome too
        assert all(word in table.stdout for word in outcomes[asked]), table.stdout
        assert not [word for word in outcomes["en" if asked == "zh" else "zh"] if word in table.stdout]
    assert_no_secret_leaked(workspace)


#: The note on a receipt naming an address the mail server refused, in each language.
REFUSED_NOTE = {"zh": " (被拒收: gone@yuexi.example)", "en": " (refused: gone@yuexi.example)"}


def test_an_address_the_mail_server_refused_is_named_in_the_language_asked_then_and_later(workspace, run_cli, mailbox):
    """The server takes the message for one address and refuses the other: delivered, and the
    receipt names the refused one in the push's --lang (the second push finds the list
    unchanged and shows the receipt it had), and in `exitcheck deliveries --lang` whichever
    language the push spoke. The ledger keeps the address apart from the receipt, no words."""
    config = workspace / "exitcheck.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "to: [renshe@yuexi.example]", "to: [renshe@yuexi.example, gone@yuexi.example]"), encoding="utf-8")
    mailbox.refuse = {"gone@yuexi.example"}
    for lang, other in (("zh", "en"), ("en", "zh")):
        done = run_cli("bands", "--push-to", "human-resources", "--lang", lang, cwd=workspace, env={**ENV, "COLUMNS": "400"})
        assert done.returncode == 0 and REFUSED_NOTE[lang] in done.stdout, done.stdout + done.stderr
        assert REFUSED_NOTE[other] not in done.stdout
        listed = run_cli("deliveries", "--lang", lang, cwd=workspace, env={"COLUMNS": "400"})
        assert REFUSED_NOTE[lang] in listed.stdout and REFUSED_NOTE[other] not in listed.stdout, listed.stdout
        (attempt,) = [a for a in ledger(run_cli, workspace, "--lang", lang)["attempts"] if a["receipt"]]
        receipt = attempt["receipt"]
        assert receipt.startswith("<") and receipt.endswith(">" + REFUSED_NOTE[lang])
        assert attempt["refused"] == ["gone@yuexi.example"]  # and as data, for a program reading the JSON
    assert mailbox.envelopes == [("fupin@yuexi.example", ["renshe@yuexi.example"])]
    with contextlib.closing(sqlite3.connect(workspace / ".exitcheck" / "deliveries.sqlite")) as db:
        (stored,) = db.execute("SELECT receipt, refused FROM attempts WHERE outcome = 'delivered'")
    assert stored[0] == receipt.removesuffix(REFUSED_NOTE["en"]) and stored[1] == '["gone@yuexi.example"]'


def test_a_receipt_an_older_version_wrote_naming_refused_addresses_is_shown_as_it_is(tmp_path):
    """Before the refused addresses were kept apart, the receipt said them in English: shown as
    it is in either language. The ledger gains the column, and keeps them apart from now on."""
    from exitcheck.delivery.ledger import DELIVERED, open_ledger
    from exitcheck.i18n import Bilingual

    with contextlib.closing(sqlite3.connect(tmp_path / "deliveries.sqlite")) as older, older:
        older.executescript(OLD_LEDGER)
        older.execute("ALTER TABLE attempts ADD COLUMN error_en TEXT")  # the version just before
        older.execute("INSERT INTO attempts (attempt_id, department, transport, target, digest, rows, started_at, outcome,"
                      " receipt) VALUES ('old', 'd', 'email', 't', '', 1, '2020-01-01T00:00:00+00:00', 'delivered', ?)",
                      ("<1@x>" + REFUSED_NOTE["en"],))
    with open_ledger(tmp_path) as book:
        book.claim(attempt_id="new", run_id=None, department="d", transport="email", target="t", digest="0" * 64, rows=1, as_of=None)
        book.finish("new", DELIVERED, receipt="<2@x>", refused=["gone@yuexi.example"])
        assert [a.receipt for a in book.attempts()] == [Bilingual("<2@x>" + REFUSED_NOTE["zh"], "<2@x>" + REFUSED_NOTE["en"]),
                                                       Bilingual.same("<1@x>" + REFUSED_NOTE["en"])]


def test_a_ledger_from_before_bilingual_errors_gains_them_and_shows_its_old_texts_as_they_are(workspace, run_cli, inbox, http_port):
    """Its rows hold one text each, in whatever language the older version wrote: shown as it
    is in both languages; the failures recorded from now on are in both."""
    path = workspace / ".exitcheck" / "deliveries.sqlite"
    path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(OLD_LEDGER)
        for attempt_id, error in (("old-1", "HTTP 502 from the old server"), ("old-2", "环境变量 EXITCHECK_TOKEN_AGRI 未设置")):
            db.execute("INSERT INTO attempts (attempt_id, department, transport, target, digest, rows, started_at, outcome,"
                       " error) VALUES (?, 'agriculture-rural', 'http', 'http://old', '', 4, '2020-06-01T02:00:00+00:00',"
                       " 'failed', ?)", (attempt_id, error))
    inbox.answers = [500, 500]
    done = run_cli("bands", "--push-to", "agriculture-rural", cwd=workspace, env=ENV)
    assert done.returncode == 5, done.stdout + done.stderr
    target = f"http://127.0.0.1:{http_port}/inbox"
    old = ["环境变量 EXITCHECK_TOKEN_AGRI 未设置", "HTTP 502 from the old server"]
    answer = ': {"id": "receipt-2"}'
    assert [a["error"] for a in ledger(run_cli, workspace)["attempts"]] == [f"{target} 返回 HTTP 500{answer}", *old]
    assert [a["error"] for a in ledger(run_cli, workspace, "--lang", "en")["attempts"]] == [f"HTTP 500 from {target}{answer}", *old]
    for asked in ("zh", "en"):
        table = run_cli("deliveries", "--lang", asked, cwd=workspace, env={"COLUMNS": "400"})
        assert table.returncode == 0 and all(text in table.stdout for text in old), table.stdout + table.stderr
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert "error_en" in [row[1] for row in db.execute("PRAGMA table_info(attempts)")]


def special_column(workbook: bytes, header: str) -> dict[str, tuple[str, bool]]:
    """{household id: (its special groups as written, whether the row is shaded)} over the band sheets."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(workbook))
    found = {}
    for sheet in book.worksheets[1:]:
        headers = [c.value for c in sheet[2]]
        for row in sheet.iter_rows(min_row=3):
            found[row[0].value] = (row[headers.index(header)].value, row[0].fill.fgColor.rgb == "FFFCE4D6")
    return found


def test_a_push_in_the_other_language_sends_nothing_again_and_each_list_speaks_its_language(workspace, run_cli, inbox, mailbox):
    """The content digest leaves the language out: after a Chinese night an English push finds
    every list unchanged. Sent again on purpose, a list has the same digest and its special
    groups in English; the households that must stand out are shaded in both."""
    assert push(run_cli, workspace).returncode == 0
    english = push(run_cli, workspace, "--lang", "en")
    assert english.returncode == 0, english.stdout + english.stderr
    assert len(inbox.requests) == 1 and len(mailbox.messages) == 1 and len(outbox(workspace)) == 2
    assert english.stdout.count("unchanged, not sent again") == 3
    (stem,) = {name.rsplit(".", 1)[0] for name in outbox(workspace)}
    chinese_book = (workspace / "outbox" / "civil-affairs" / f"{stem}.xlsx").read_bytes()
    forced = push(run_cli, workspace, "--lang", "en", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert outbox(workspace) == [f"{stem}.json", f"{stem}.xlsx"]  # the same digest names the same files
    zh_body, en_body = inbox.bodies
    assert en_body["digest"] == zh_body["digest"]
    for body, labels in ((zh_body, ["残疾", "有劳动力未务工", "低保"]),
                         (en_body, ["member with a disability", "member able to work, without work", "minimum living guarantee"])):
        special = {h["household_id"]: h["special"] for band in body["bands"] for h in band["households"]}
        assert special == {H[0]: [labels[0]], H[1]: [], H[3]: [labels[1]], H[4]: [labels[2]]}
    english_book = (workspace / "outbox" / "civil-affairs" / f"{stem}.xlsx").read_bytes()
    assert special_column(chinese_book, "特殊群体") == {H[0]: ("残疾", True), H[1]: (None, False),
                                                       H[3]: ("有劳动力未务工", False), H[4]: ("低保", False)}
    assert special_column(english_book, "Special groups") == {
        H[0]: ("member with a disability", True), H[1]: (None, False),
        H[3]: ("member able to work, without work", False), H[4]: ("minimum living guarantee", False)}
    assert len(mailbox.messages) == 2


def test_server_errors_are_retried_under_the_same_key(workspace, run_cli, inbox):
    inbox.answers = [503]
    done = push(run_cli, workspace)
    assert done.returncode == 0, done.stderr
    keys = [r["headers"]["Idempotency-Key"] for r in inbox.requests]
    assert len(keys) == 2 and keys[0] == keys[1]
    inbox.answers = [500, 502]  # two attempts configured: both fail
    inbox.say = {"detail": "maintenance until 06:00"}
    forced = push(run_cli, workspace, "--force")
    assert forced.returncode == 5 and len(inbox.requests) == 4
    assert '返回 HTTP 502: {"id": "receipt-4", "detail": "maintenance until 06:00"}' in forced.stderr  # its answer quoted


def test_force_delivers_unchanged_content_under_a_new_key(workspace, run_cli, inbox, mailbox):
    assert push(run_cli, workspace).returncode == 0
    forced = push(run_cli, workspace, "--force")
    assert forced.returncode == 0
    assert len(inbox.requests) == 2 and len(mailbox.messages) == 2
    first, second = (r["headers"]["Idempotency-Key"] for r in inbox.requests)
    assert re.fullmatch(r"[0-9a-f]{64}", first) and re.fullmatch(r"[0-9a-f]{64}-[0-9a-f]{16}", second)
    assert not second.startswith(first)


def idempotency_key(recipient: str, target: str, digest: str, after: str = "") -> str:
    """The key the README documents: sha256 of recipient, target, digest and the attempt id of
    the last list delivered there (left out for the first, whose key is what earlier versions
    gave it), one a line."""
    return hashlib.sha256("\n".join((recipient, target, digest, *([after] if after else []))).encode()).hexdigest()


def test_a_list_that_comes_back_to_earlier_content_is_sent_under_a_new_key(workspace, run_cli, inbox, http_port):
    """A household's income goes 4150 -> 4650 -> 4150: lists A, B, A. Under a key of recipient,
    target and digest alone the third POST repeated the first's key, and a receiver that drops
    repeats (as the README invites) answered 200 and kept B: a stale list, recorded as
    delivered. A retry of one list still keeps its key."""
    def night(income: float) -> None:
        changed = county()
        changed.households[4]["人均纯收入"] = income  # household 5: in agriculture's list
        changed.write(workspace / "data" / "registers.xlsx")
        done = run_cli("bands", "--push-to", "agriculture-rural", cwd=workspace, env=ENV)
        assert done.returncode == 0, done.stdout + done.stderr

    night(4150)
    night(4650)
    inbox.answers = [503]  # the third night's first POST is retried
    night(4150)
    keys = [r["headers"]["Idempotency-Key"] for r in inbox.requests]
    digests = [body["digest"] for body in inbox.bodies]
    assert len(keys) == 4 and digests[0] == digests[2] == digests[3] != digests[1]
    assert keys[2] == keys[3] and len(set(keys[:3])) == 3
    delivered = [a for a in reversed(ledger(run_cli, workspace, "--department", "agriculture-rural")["attempts"])
                 if a["outcome"] == "delivered"]
    target = f"http://127.0.0.1:{http_port}/inbox"
    assert keys[0] == idempotency_key("agriculture-rural", target, digests[0])
    assert keys[2] == idempotency_key("agriculture-rural", target, digests[0], delivered[1]["attempt_id"])


def test_two_departments_with_the_same_list_at_one_url_get_different_keys(tmp_path, run_cli, inbox, http_port, smtp_port, certificate):
    """A receiver that honours the key must not drop the second department's list as a repeat
    of the first's; a retry of either keeps its own key."""
    root = make_workspace(tmp_path, http_port=http_port, smtp_port=smtp_port, certificate=certificate)
    config = (root / "exitcheck.yaml").read_text(encoding="utf-8")
    agriculture = config[config.index("  agriculture-rural:"):config.index("  human-resources:")]
    (root / "exitcheck.yaml").write_text(config + agriculture.replace("agriculture-rural:", "civil-affairs-copy:"), encoding="utf-8")
    inbox.answers = [503]  # the first POST is retried
    done = run_cli("bands", "--push-to", "agriculture-rural", "--push-to", "civil-affairs-copy", cwd=root, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    keys = [(json.loads(r["body"])["department"]["id"], r["headers"]["Idempotency-Key"]) for r in inbox.requests]
    digests = {body["department"]["id"]: body["digest"] for body in inbox.bodies}
    assert len(set(digests.values())) == 1  # the same content
    target = f"http://127.0.0.1:{http_port}/inbox"
    assert keys == [("agriculture-rural", idempotency_key("agriculture-rural", target, digests["agriculture-rural"]))] * 2 + [
        ("civil-affairs-copy", idempotency_key("civil-affairs-copy", target, digests["civil-affairs-copy"]))]
    assert keys[0][1] != keys[2][1]


def test_a_dry_run_sends_and_records_nothing(workspace, run_cli, inbox, mailbox):
    done = push(run_cli, workspace, "--dry-run", env={})
    assert done.returncode == 0, done.stderr
    assert "将投递" in done.stdout and "EXITCHECK_TOKEN_AGRI" in done.stderr
    assert inbox.requests == [] and mailbox.messages == [] and outbox(workspace) == []
    assert ledger(run_cli, workspace)["attempts"] == []


def test_deliveries_names_each_department_and_keeps_its_id(tmp_path, run_cli):
    """A clerk reads 民政局, and types it or the id shown beside it to --department; --json keeps the id."""
    assert run_cli("init", "county").returncode == 0
    root = tmp_path / "county"
    done = run_cli("bands", "--push-to", "civil-affairs", cwd=root, env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    assert "民政局(civil-affairs)" in done.stdout  # the push's own table names it the same way
    for lang, named in (("zh", "民政局(civil-affairs)"), ("en", "Civil affairs (civil-affairs)")):
        for asked in ("civil-affairs", "民政局"):
            listing = run_cli("deliveries", "--lang", lang, "--department", asked, cwd=root, env={"COLUMNS": "300"})
            assert listing.returncode == 0, listing.stderr
            assert named in listing.stdout, listing.stdout
    assert [a["department"] for a in ledger(run_cli, root)["attempts"]] == ["civil-affairs"]


def test_deliveries_warns_about_a_department_failing_run_after_run(tmp_path, run_cli, smtp_port, certificate):
    with port_down() as port:  # nothing listens there
        root = make_workspace(tmp_path, http_port=port, smtp_port=smtp_port, certificate=certificate)
        for _ in range(3):
            assert push(run_cli, root).returncode == 5
        listing = run_cli("deliveries", cwd=root)
        assert listing.returncode == 0 and "agriculture-rural" in listing.stdout
        assert "部门 农业农村局(agriculture-rural) 已连续 3 次" in listing.stderr, listing.stderr
        document = ledger(run_cli, root)
        assert document["failing"] == [{"department": "agriculture-rural", "failed_runs": 3}]
        assert len(document["attempts"]) == 9
        fourth = push(run_cli, root)
        assert "连续 4 次" in fourth.stderr


def test_tls_is_verified_unless_the_config_says_otherwise(tmp_path, run_cli, inbox, smtp_port, certificate):
    server = HttpServer(inbox, tls=server_tls(certificate))
    port = server.port
    try:
        strict = make_workspace(tmp_path / "strict", http_port=port, smtp_port=smtp_port, certificate=certificate, scheme="https")
        done = run_cli("bands", "--push-to", "agriculture-rural", cwd=strict, env=ENV)
        assert done.returncode == 5 and inbox.requests == []  # a self-signed certificate is refused
        loose = make_workspace(tmp_path / "loose", http_port=port, smtp_port=smtp_port, certificate=certificate,
                               scheme="https", http_extra=", verify_tls: false")
        done = run_cli("bands", "--push-to", "agriculture-rural", cwd=loose, env=ENV)
        assert done.returncode == 0, done.stderr
        assert len(inbox.requests) == 1 and inbox.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    finally:
        server.stop()


def test_email_refuses_a_certificate_it_cannot_verify(tmp_path, run_cli, mailbox, smtp_port, certificate, tmp_path_factory):
    other = tmp_path_factory.mktemp("other-ca") / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(other.with_suffix(".key")),
                    "-out", str(other), "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    with port_down() as port:  # nothing listens there
        root = make_workspace(tmp_path, http_port=port, smtp_port=smtp_port, certificate=(other, other))
        done = run_cli("bands", "--push-to", "human-resources", cwd=root, env=ENV)
        assert done.returncode == 5 and mailbox.messages == [] and mailbox.logins == []
        assert "human-resources" in done.stderr


def test_push_needs_a_workspace_and_a_known_department(tmp_path, tmp_path_factory, run_cli, workspace):
    alone = tmp_path_factory.mktemp("alone")
    county().write(alone / "registers.xlsx")
    done = run_cli("bands", "registers.xlsx", "--push-to", "civil-affairs", cwd=alone)
    assert done.returncode == 4 and "exitcheck.yaml" in done.stderr
    done = run_cli("bands", "--push-to", "civil-afairs", cwd=workspace, env=ENV)
    assert done.returncode == 2 and "civil-affairs" in done.stderr
    done = run_cli("bands", "--push-to", "民政", "--lang", "en", cwd=workspace, env=ENV)
    assert done.returncode == 2 and "no such department: 民政" in done.stderr
    assert outbox(workspace) == []


def test_push_takes_a_department_by_the_name_the_workspace_gives_it(workspace, run_cli):
    """民政局 is what the clerk reads in the lists and the ledger: it names civil-affairs exactly."""
    done = run_cli("bands", "--push-to", "民政局", "--dry-run", cwd=workspace, env=ENV)
    assert done.returncode == 0, done.stderr
    assert "民政局(civil-affairs)" in done.stdout and "农业农村局" not in done.stdout


def test_an_unreadable_input_delivers_nothing(workspace, run_cli, inbox, mailbox):
    (workspace / "data" / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    done = run_cli("bands", "data", "--push-to", "all", cwd=workspace, env=ENV)
    assert done.returncode == 3
    assert inbox.requests == [] and mailbox.messages == [] and outbox(workspace) == []


def test_the_library_push_reports_each_department(workspace, inbox, mailbox):
    """The API `exitcheck run` will call: one outcome per department, secrets from `environ`."""
    import exitcheck
    from exitcheck.auditing import audit
    from exitcheck.delivery import push as push_lists
    from exitcheck.workspace import load_config

    config = load_config(workspace / "exitcheck.yaml")
    result = audit(exitcheck.load(config.registers), as_of=config.as_of)
    outcomes = push_lists(config, result, ["all"], environ=ENV)
    assert [(o.department, o.outcome, o.rows) for o in outcomes] == [
        ("civil-affairs", "delivered", 4), ("agriculture-rural", "delivered", 4), ("human-resources", "delivered", 2),
    ]
    assert outcomes[2].counts == {"below_4200": 1, "4200_4500": 1}
    again = push_lists(config, result, ["civil-affairs"], environ={})
    assert [o.outcome for o in again] == ["unchanged"]
    # a member who dies changes what human resources receives (household 1 no longer has a disabled member)
    county_now = county()
    county_now.members[0]["人员状态"] = "死亡"
    county_now.members.append(member(H[0], "新户主", make_id(date(1975, 5, 5), 66, True), "户主", "男", "1975-05-05"))
    county_now.write(workspace / "data" / "registers.xlsx")
    result = audit(exitcheck.load(config.registers), as_of=config.as_of)
    outcomes = push_lists(config, result, ["human-resources"], environ=ENV)
    assert outcomes[0].outcome == "delivered" and outcomes[0].rows == 1 and len(mailbox.messages) == 2


def test_a_ledger_file_others_could_read_is_made_owner_only_however_it_is_opened(tmp_path):
    """It names households: a copy made with a wider mode is narrowed by the ledger itself,
    not only by one of the functions that open it."""
    from exitcheck.delivery.ledger import FILE_NAME, Ledger

    path = tmp_path / FILE_NAME
    with contextlib.closing(sqlite3.connect(path)):
        pass
    path.chmod(0o644)
    with Ledger(tmp_path) as book:
        assert book.attempts() == []
    assert path.stat().st_mode & 0o777 == 0o600


# ---- two processes at once, without the workspace's lock: each list claimed, sent once ----

#: A library caller of push() in a process of its own (no lock taken): audits, says it is
#: ready, waits for the word, pushes, prints [department, outcome] for each list.
PUSHER = """
import json, os, sys, time
from pathlib import Path

import exitcheck
from exitcheck.auditing import audit
from exitcheck.income_bands import bands
from exitcheck.delivery import push
from exitcheck.workspace import load_config

root, go = Path(sys.argv[1]), Path(sys.argv[2])
config = load_config(root / "exitcheck.yaml")
result = audit(exitcheck.load(config.registers), as_of=config.as_of)
banded = bands(result)
(root / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.005)
outcomes = push(config, result, sys.argv[3:], banded=banded)
print(json.dumps([[o.department, o.outcome] for o in outcomes]))
"""


def start_pusher(root: Path, *departments: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", PUSHER, str(root), str(root / "go"), *(departments or ["all"])],
                            env={**os.environ, **ENV, "PYTHONIOENCODING": "utf-8"}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pushed(process: subprocess.Popen[str]) -> dict[str, str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, out + err
    return dict(json.loads(out.splitlines()[-1]))


def ready(root: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(root.glob("ready-*"))) < count:
        assert time.monotonic() < deadline, "the pushers never got ready"
        time.sleep(0.02)


def with_a_second_http_department(root: Path) -> Path:
    """agriculture-copy: agriculture-rural's list at the same inbox, a second recipient there."""
    config = (root / "exitcheck.yaml").read_text(encoding="utf-8")
    agriculture = config[config.index("  agriculture-rural:"):config.index("  human-resources:")]
    (root / "exitcheck.yaml").write_text(config + agriculture.replace("agriculture-rural:", "agriculture-copy:"), encoding="utf-8")
    return root


def delivered_per_department(root: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(root / ".exitcheck" / "deliveries.sqlite")) as db:
        return dict(db.execute("SELECT department, COUNT(*) FROM attempts WHERE outcome = 'delivered' GROUP BY department"))


def test_two_processes_pushing_at_once_without_the_lock_send_each_list_once(workspace, inbox, mailbox):
    root = with_a_second_http_department(workspace)
    inbox.hold = 3.0  # each POST takes a while: the other process comes by while it is on its way
    pushers = [start_pusher(root), start_pusher(root)]
    ready(root, 2)
    (root / "go").touch()
    first, second = (pushed(p) for p in pushers)
    recipients = [body["department"]["id"] for body in inbox.bodies]
    assert sorted(recipients) == ["agriculture-copy", "agriculture-rural"]  # one request per recipient
    assert len(mailbox.messages) == 1 and len(outbox(root)) == 2
    assert delivered_per_department(root) == {"agriculture-copy": 1, "agriculture-rural": 1, "civil-affairs": 1, "human-resources": 1}
    for department in first:  # one process sent it; the other found it sent, or being sent
        assert sorted([first[department], second[department]]) in (["delivered", "skipped"], ["delivered", "unchanged"])
    assert "skipped" in [*first.values(), *second.values()]  # they did meet


def test_a_claim_held_by_a_live_process_is_skipped_and_one_left_by_a_killed_process_is_sent_again(workspace, inbox, run_cli):
    inbox.hold = 120  # the first sender stays mid-send until it is killed, and waits that long for an answer
    config = workspace / "exitcheck.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("backoff: 0.01, timeout: 5", "backoff: 0.01, timeout: 120"), encoding="utf-8")
    victim = start_pusher(workspace, "agriculture-rural")
    (workspace / "go").touch()
    deadline = time.monotonic() + 120
    while not inbox.requests:
        assert time.monotonic() < deadline and victim.poll() is None, "the first sender never reached the server"
        time.sleep(0.02)
    inbox.hold = 0  # the victim's POST stays held; any other is answered at once
    alive = run_cli("bands", "--push-to", "agriculture-rural", cwd=workspace, env={**ENV, "COLUMNS": "300"})
    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert "跳过: 另一进程正在投递" in alive.stdout and f"另一进程正在投递同一名单(pid {victim.pid}," in alive.stdout
    assert len(inbox.requests) == 1
    victim.kill()
    victim.wait(60)
    inbox.released.set()
    again = run_cli("bands", "--push-to", "agriculture-rural", cwd=workspace, env=ENV)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(inbox.requests) == 2  # the killed sender's list went out again, under the same key
    assert inbox.requests[0]["headers"]["Idempotency-Key"] == inbox.requests[1]["headers"]["Idempotency-Key"]
    attempts = [(a["outcome"], a["error"]) for a in ledger(run_cli, workspace)["attempts"]]
    assert attempts[0] == ("delivered", None) and attempts[1][0] == "failed" and len(attempts) == 2
    # Told in the language `deliveries` is asked for, whichever the push that found it spoke.
    assert attempts[1][1].startswith("已中断: ") and f"上的进程 {victim.pid} 于 " in attempts[1][1]
    assert ledger(run_cli, workspace, "--lang", "en")["attempts"][1]["error"].startswith(f"interrupted: pid {victim.pid} on ")
    once = run_cli("bands", "--push-to", "agriculture-rural", cwd=workspace, env=ENV)
    assert once.returncode == 0 and len(inbox.requests) == 2


def claim_of_another_host(root: Path, department: str, age: timedelta, pid: int = 4242, host: str = "another-host") -> None:
    """A claim on this workspace's agriculture list by a process on another machine (or the
    `pid` and `host` given)."""
    import exitcheck
    from exitcheck.auditing import audit
    from exitcheck.delivery import push as push_lists
    from exitcheck.workspace import load_config

    config = load_config(root / "exitcheck.yaml")
    result = audit(exitcheck.load(config.registers), as_of=config.as_of)
    (planned,) = push_lists(config, result, [department], dry_run=True, environ=ENV)
    claimed_at = (datetime.now(UTC) - age).isoformat(timespec="seconds")
    with contextlib.closing(sqlite3.connect(root / ".exitcheck" / "deliveries.sqlite")) as db, db:
        db.execute("INSERT INTO attempts (attempt_id, department, transport, target, digest, rows, started_at, outcome)"
                   " VALUES ('elsewhere', ?, 'http', ?, ?, 4, ?, 'pending')", (department, planned.target, planned.digest, claimed_at))
        db.execute("INSERT INTO claims VALUES (?, ?, ?, 'elsewhere', ?, ?, ?)",
                   (department, planned.target, planned.digest, pid, host, claimed_at))


@pytest.mark.parametrize(("whose", "sent"), [("this process's pid, not its claim", True),
                                             ("a live pid of this host name in another pid namespace", False)])
def test_a_claim_is_judged_by_the_machine_and_process_that_made_it(workspace, inbox, whose, sent):
    """A claim in this process's own pid that it did not make was left by an earlier process
    with the same pid (a restarted container): stale. A pid of another pid namespace that
    shares the host name (containers on host networking) says nothing here: honoured until it
    expires, or a live sender there would be taken for a dead one and the list sent twice."""
    import socket

    import exitcheck
    from exitcheck.delivery import push as push_lists
    from exitcheck.delivery.ledger import this_machine
    from exitcheck.workspace import load_config

    other_namespace = f"{socket.gethostname()}:pidns-1"
    assert this_machine() != other_namespace
    pid, host = (os.getpid(), this_machine()) if sent else (os.getpid() + 1_000_000, other_namespace)
    claim_of_another_host(workspace, "agriculture-rural", timedelta(minutes=5), pid=pid, host=host)
    config = load_config(workspace / "exitcheck.yaml")
    (outcome,) = push_lists(config, exitcheck.audit(exitcheck.load(config.registers), as_of=config.as_of),
                            ["agriculture-rural"], environ=ENV)
    assert (outcome.outcome, len(inbox.requests)) == (("delivered", 1) if sent else ("skipped", 0))


@pytest.mark.parametrize(("age", "sent"), [(timedelta(minutes=5), False), (timedelta(hours=7), True)], ids=["recent", "expired"])
def test_a_claim_from_another_host_holds_until_it_expires(workspace, inbox, run_cli, age, sent):
    """Its pid cannot be looked at from here: it is honoured for CLAIM_EXPIRES (6 hours), then
    taken for a sender that died."""
    from exitcheck.delivery.ledger import CLAIM_EXPIRES

    assert timedelta(minutes=5) < CLAIM_EXPIRES < timedelta(hours=7)
    claim_of_another_host(workspace, "agriculture-rural", age)
    done = run_cli("bands", "--push-to", "agriculture-rural", cwd=workspace, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(inbox.requests) == int(sent)
    outcomes = [(a["attempt_id"], a["outcome"]) for a in ledger(run_cli, workspace)["attempts"]]
    assert outcomes[-1] == ("elsewhere", "failed" if sent else "pending")
    assert [o for _, o in outcomes[:-1]] == (["delivered"] if sent else [])


def test_a_list_another_process_is_sending_is_logged_in_english_by_a_chinese_night(workspace, inbox, run_cli):
    """The nightly run's step line says "skipped" in its --lang (Chinese by default) and its log
    in English, as every other line of both: who is sending the list instead too."""
    claim_of_another_host(workspace, "agriculture-rural", timedelta(minutes=5))
    night = run_cli("run", cwd=workspace, env={**ENV, "COLUMNS": "300"})
    assert night.returncode == 1, night.stdout + night.stderr  # findings, no failure
    assert "跳过: 另一进程正在投递 1" in night.stdout and inbox.requests == []
    (log,) = (workspace / ".exitcheck" / "logs").glob("*.jsonl")
    (step,) = [e for e in map(json.loads, log.read_text(encoding="utf-8").splitlines()) if e.get("step") == "departments"]
    assert "1 skipped: another process is sending it" in step["message"]
    (skipped,) = [o for o in step["outcomes"] if o["outcome"] == "skipped"]
    assert skipped["receipt"].startswith("the same list is being sent by another process (pid 4242 on another-host, since ")


#: The ledger's tables as the versions before claims made them.
OLD_LEDGER = """
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, attempt_id TEXT NOT NULL UNIQUE, run_id TEXT, department TEXT NOT NULL,
    transport TEXT NOT NULL, target TEXT NOT NULL, digest TEXT NOT NULL, rows INTEGER NOT NULL, as_of TEXT,
    started_at TEXT NOT NULL, finished_at TEXT, outcome TEXT NOT NULL, receipt TEXT, error TEXT
);
CREATE INDEX attempts_by_department ON attempts (department, id);
"""


def test_a_ledger_from_before_claims_is_migrated_and_keeps_what_it_knew(workspace, inbox, mailbox, run_cli):
    """civil-affairs' list was delivered and stays unchanged; agriculture's attempt was left
    pending by a run killed under an older version: it holds no claim, and the list goes out."""
    import exitcheck
    from exitcheck.auditing import audit
    from exitcheck.delivery import push as push_lists
    from exitcheck.workspace import load_config

    config = load_config(workspace / "exitcheck.yaml")
    result = audit(exitcheck.load(config.registers), as_of=config.as_of)
    planned = {o.department: o for o in push_lists(config, result, ["all"], dry_run=True, environ=ENV)}
    path = workspace / ".exitcheck" / "deliveries.sqlite"
    path.unlink()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(OLD_LEDGER)
        for attempt_id, department, outcome in (("old-1", "civil-affairs", "delivered"), ("old-2", "agriculture-rural", "pending")):
            db.execute("INSERT INTO attempts (attempt_id, department, transport, target, digest, rows, started_at, outcome)"
                       " VALUES (?, ?, ?, ?, ?, 4, '2020-06-01T02:00:00+00:00', ?)",
                       (attempt_id, department, planned[department].transport, planned[department].target,
                        planned[department].digest, outcome))
    done = push(run_cli, workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(inbox.requests) == 1 and len(mailbox.messages) == 1 and outbox(workspace) == []  # civil affairs: unchanged
    latest = {}
    for attempt in ledger(run_cli, workspace)["attempts"]:
        latest.setdefault(attempt["department"], attempt["outcome"])
    assert latest == {"civil-affairs": "unchanged", "agriculture-rural": "delivered", "human-resources": "delivered"}
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)  # every claim released with its outcome


def test_a_filter_no_column_can_tell_sends_no_list_and_says_why(tmp_path, run_cli, inbox, mailbox, http_port, smtp_port, certificate):
    """A 成员表 without 劳动技能, 务工状况 and 健康状况: 人社's `labour_unemployed > 0 or
    disabled_members > 0` counted zero for every household and 人社 got an empty list, night
    after night, telling it there was no one to act on. Its list is now not sent (exit 5, the
    reason naming the columns), the others go out, and bands says the special groups lack them."""
    root = make_workspace(tmp_path, http_port=http_port, smtp_port=smtp_port, certificate=certificate)
    stripped = county()
    for row in stripped.members:
        for column in ("劳动技能", "务工状况", "健康状况"):
            row.pop(column, None)
    stripped.write(root / "data" / "registers.xlsx")
    done = push(run_cli, root)
    assert done.returncode == 5, done.stdout + done.stderr
    assert mailbox.messages == [] and len(inbox.requests) == 1 and len(outbox(root)) == 2
    assert ("筛选条件「labour_unemployed > 0 or disabled_members > 0」要用的数无法计算"
            "(成员表没有「健康状况」、「劳动技能」、「务工状况」列), 名单会漏掉要找的户, 未投递") in done.stderr
    assert "成员表没有「健康状况」列, 无法判断哪些户属于「残疾」" in done.stderr
    again = push(run_cli, root)  # not recorded as delivered: it fails again, and is not "unchanged"
    assert again.returncode == 5 and mailbox.messages == []
    refused = [a for a in ledger(run_cli, root)["attempts"] if a["department"] == "human-resources"]
    assert [a["outcome"] for a in refused] == ["failed", "failed"] and "名单会漏掉要找的户" in refused[0]["error"]


def test_a_filter_that_reads_a_figure_no_column_gives_is_not_sent_even_when_another_term_picks_some(
        tmp_path, run_cli, mailbox, http_port, smtp_port, certificate):
    """`labour_unemployed > 0 or income_per_capita < 4000` without 务工状况: the income term picks
    a household, so the list was not empty, and went out lacking every unemployed household."""
    root = make_workspace(tmp_path, http_port=http_port, smtp_port=smtp_port, certificate=certificate)
    config = (root / "exitcheck.yaml").read_text(encoding="utf-8")
    (root / "exitcheck.yaml").write_text(config.replace("where: labour_unemployed > 0 or disabled_members > 0",
                                                        "where: labour_unemployed > 0 or income_per_capita < 4000"), encoding="utf-8")
    stripped = county()
    for row in stripped.members:
        row.pop("务工状况", None)
    stripped.write(root / "data" / "registers.xlsx")
    done = push(run_cli, root, "--push-to", "human-resources")
    assert done.returncode == 5 and mailbox.messages == [], done.stdout + done.stderr
    assert "要用的数无法计算(成员表没有「务工状况」列)" in done.stderr


def test_households_a_filter_cannot_tell_are_counted_in_the_message(tmp_path, run_cli, mailbox, http_port, smtp_port, certificate):
    """One of 人社's households has a blank 务工状况 and 劳动技能 of a member who could count:
    left out as before, and the message says how many were."""
    root = make_workspace(tmp_path, http_port=http_port, smtp_port=smtp_port, certificate=certificate)
    config = (root / "exitcheck.yaml").read_text(encoding="utf-8")
    (root / "exitcheck.yaml").write_text(config.replace("where: labour_unemployed > 0 or disabled_members > 0",
                                                        "where: relocated or labour_unemployed > 0"), encoding="utf-8")
    blanks = county()
    for row, moved in zip(blanks.households, ["", "否", "否", "否", "否", "否"], strict=True):
        row["易地扶贫搬迁"] = moved
    blanks.write(root / "data" / "registers.xlsx")
    done = push(run_cli, root, "--push-to", "human-resources")
    assert done.returncode == 0, done.stdout + done.stderr
    body = mailbox.messages[0].get_body(("plain",)).get_content()
    assert "另有 1 户因筛选所需的数据为空, 无法判断是否属于本名单, 未列入" in body
    # a folder (or HTTP) receiver reads it in the list itself, and a change of it alone is a new list
    (root / "exitcheck.yaml").write_text((root / "exitcheck.yaml").read_text(encoding="utf-8").replace(
        "    name: 民政局\n", "    name: 民政局\n    where: relocated or labour_unemployed > 0\n"), encoding="utf-8")
    def civil_affairs_lists() -> list[dict]:
        return [json.loads(p.read_text(encoding="utf-8")) for p in (root / "outbox" / "civil-affairs").glob("*.json")]

    assert len(civil_affairs_lists()) == 1  # the first push above went to every department
    assert push(run_cli, root).returncode == 0
    assert [d.get("households_not_told") for d in civil_affairs_lists()].count(1) == 1
    blanks.households[0]["易地扶贫搬迁"] = "否"  # now told (and not relocated): that alone is a new list
    blanks.write(root / "data" / "registers.xlsx")
    assert push(run_cli, root).returncode == 0
    assert len(civil_affairs_lists()) == 3


def test_a_send_killed_before_the_list_changed_is_closed_as_interrupted(workspace, inbox, run_cli):
    """A claim left by a dead sender on one list, and tonight's list is another: its attempt
    stayed pending (未完成) for ever, as only a claim of the same list was ever cleared. It is
    closed as interrupted, and the new list goes out."""
    claim_of_another_host(workspace, "agriculture-rural", timedelta(hours=7))  # expired: its sender is gone
    changed = county()
    changed.households[4]["人均纯收入"] = 3100  # another list for agriculture
    changed.write(workspace / "data" / "registers.xlsx")
    done = run_cli("bands", "--push-to", "agriculture-rural", cwd=workspace, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(inbox.requests) == 1
    outcomes = {a["attempt_id"]: (a["outcome"], a["error"]) for a in ledger(run_cli, workspace)["attempts"]}
    outcome, error = outcomes["elsewhere"]
    assert outcome == "failed" and error.startswith("已中断: another-host 上的进程 4242")


def test_an_smtp_user_that_is_part_of_an_address_leaves_the_address_readable(workspace, run_cli, mailbox):
    """SMTP user "renshe" for renshe@yuexi.example: every message about the delivery read
    mailto:***@yuexi.example, and a clerk could not tell which mailbox failed. The address is
    shown whole; the user is still hidden anywhere else."""
    done = run_cli("bands", "--push-to", "human-resources", cwd=workspace, env={**ENV, "EXITCHECK_SMTP_USER": "renshe"})
    assert done.returncode == 5, done.stdout + done.stderr  # the server refuses the login
    assert "mailto:renshe@yuexi.example via 127.0.0.1" in done.stderr and "***@" not in done.stderr + done.stdout
    assert set(mailbox.logins) == {b"renshe"} and mailbox.messages == []


def test_the_ledger_is_readable_at_eighty_columns(workspace, run_cli, inbox):
    """cron's mail, a terminal, `| less`: at 80 columns the table squeezed the outcome and the
    reason to one character a line. Each attempt is a paragraph there, its reason whole."""
    inbox.answers = [500, 500]
    inbox.say = {"detail": "the department's server is down for maintenance until 06:00"}
    assert push(run_cli, workspace).returncode == 5
    listed = run_cli("deliveries", cwd=workspace, env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(len(line) <= 80 * 2 for line in lines)  # a Chinese character is two columns
    failed = next(i for i, line in enumerate(lines) if "农业农村局(agriculture-rural)" in line)
    assert re.search(r"  http  4 户  失败  [0-9a-f]{12}$", lines[failed]), lines[failed]
    assert "down for maintenance until 06:00" in " ".join(lines[failed + 1:failed + 3])
    wide = run_cli("deliveries", cwd=workspace, env={"COLUMNS": "400"})
    assert "回执 / 原因" in wide.stdout  # the table where there is room
    pushed = run_cli("bands", "--push-to", "agriculture-rural", "--force", cwd=workspace, env={**ENV, "COLUMNS": "80"})
    assert re.search(r"^农业农村局\(agriculture-rural\)  http://127\.0\.0\.1:\d+/inbox  4 户  已投递$", pushed.stdout, re.M), pushed.stdout
