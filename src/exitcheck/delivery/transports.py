"""The three ways a list reaches its recipient: a folder, an HTTP inbox, an e-mail.

Each transport takes a `Parcel` (the list as JSON and as a workbook, already rendered) and
either returns a `Receipt` or raises `TransportError` with a message fit for the ledger, in
Chinese and English (whoever shows it picks the language; a server's own words are quoted as
they are in both): it names what went wrong, never a secret nor a whole ID number (every
message passes through `scrub` with the secrets in use). Transports know nothing of bands or
departments, so the nightly run can send township gap lists through them too.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from exitcheck.i18n import Bilingual
from exitcheck.idcard import mask_text
from exitcheck.report.files import DEFAULT_MODE, write_bytes
from exitcheck.workspace import DirDelivery, EmailDelivery, HttpDelivery

Spec = DirDelivery | HttpDelivery | EmailDelivery
T = TypeVar("T")
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
_MAX_DETAIL = 300


@dataclass(frozen=True)
class Parcel:
    """What goes to one recipient, rendered once: file stem, bytes, subject and body."""

    recipient: str
    stem: str  # file name without extension, e.g. civil-affairs-2020-06-30-1a2b3c4d5e6f
    digest: str
    rows: int
    json_bytes: bytes
    xlsx_bytes: bytes
    subject: str
    body: str


@dataclass(frozen=True)
class Receipt:
    """Proof of delivery: the file written, the HTTP status and id, the SMTP message id; and the
    addresses a mail server refused while it took the message for the others. These are kept
    as data, not words: whoever shows the receipt says them in its language (ledger.receipt_text)."""

    text: str
    refused: tuple[str, ...] = ()


class TransportError(Exception):
    """A delivery that did not happen; `text` says why in Chinese and English, safe to store
    and print once `send` has scrubbed it."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.text = Bilingual(zh, en)


class MissingSecret(TransportError):
    """An environment variable the target needs is not set."""

    def __init__(self, variable: str) -> None:
        super().__init__(variable, variable)  # push words the message: it knows the setting
        self.variable = variable


class InvalidSecret(MissingSecret):
    """A token that cannot go in an HTTP header: a control character (a newline pasted with
    it), a space at either end, a character outside ASCII. Sent, it would fail inside the
    HTTP library as if the server could not be reached, and be retried for nothing."""


def scrub(text: str, secrets: Iterable[str], public: Iterable[str] = ()) -> str:
    """The text with every secret replaced by ***, whatever library produced it, and every ID
    number masked: a receiver's answer may quote the rows it refused. The `public` texts (the
    target's addresses, public_texts) are left whole: an SMTP user "renshe" made the address
    renshe@example.cn read ***@example.cn in every message about it."""
    secrets = [secret for secret in secrets if secret]
    kept = sorted({p for p in public if p}, key=len, reverse=True)
    if not kept:
        return mask_text(_hidden(text, secrets))
    pattern = re.compile("|".join(map(re.escape, kept)))
    pieces, found = pattern.split(text), pattern.findall(text)
    joined = _hidden(pieces[0], secrets) + "".join(p + _hidden(piece, secrets) for p, piece in zip(found, pieces[1:], strict=True))
    return mask_text(joined)


def _hidden(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def scrubbed(text: Bilingual, secrets: Iterable[str], public: Iterable[str] = ()) -> Bilingual:
    """`scrub` over both languages of a text."""
    kept, shown = list(secrets), list(public)
    return text.map(lambda one: scrub(one, kept, shown))


def public_texts(spec: Spec) -> list[str]:
    """What a target shows of itself, never a secret even when one is part of it: its
    description and, for e-mail, its addresses."""
    addresses = [spec.sender, *spec.to] if isinstance(spec, EmailDelivery) else []
    return [describe(spec), *addresses]


def describe(spec: Spec) -> str:
    """Where a target delivers, for people and for the ledger (no query string, no secret)."""
    if isinstance(spec, DirDelivery):
        return str(spec.path)
    if isinstance(spec, HttpDelivery):
        parts = urlsplit(spec.url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return f"mailto:{','.join(spec.to)} via {spec.host}:{spec.port}"


def secret_variables(spec: Spec) -> list[str]:
    """The environment variables a target reads its secrets from."""
    if isinstance(spec, HttpDelivery):
        return [spec.token_env] if spec.token_env else []
    if isinstance(spec, EmailDelivery):
        return [v for v in (spec.username_env, spec.password_env) if v]
    return []


def read_secrets(spec: Spec, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{variable: value} for the target; MissingSecret names the first one unset or empty."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for variable in secret_variables(spec):
        value = environ.get(variable, "")
        if not value:
            raise MissingSecret(variable)
        if isinstance(spec, HttpDelivery) and not _fits_a_header(value):
            raise InvalidSecret(variable)
        values[variable] = value
    return values


def _fits_a_header(value: str) -> bool:
    """Visible ASCII, inner spaces allowed: what a header value may hold."""
    return value == value.strip(" ") and all(" " <= ch <= "~" for ch in value)


def send(spec: Spec, parcel: Parcel, *, key: str, secrets: Mapping[str, str], file_mode: int = DEFAULT_MODE) -> Receipt:
    """Deliver a parcel; `key` is the idempotency key (push.idempotency_key)."""
    try:
        if isinstance(spec, DirDelivery):
            return send_dir(spec, parcel, file_mode)
        if isinstance(spec, HttpDelivery):
            return send_http(spec, parcel, key, secrets.get(spec.token_env or ""))
        return send_email(spec, parcel, secrets.get(spec.username_env or ""), secrets.get(spec.password_env or ""))
    except TransportError as error:
        text = scrubbed(error.text, secrets.values(), public_texts(spec))
        raise TransportError(text.zh, text.en) from None


# ---- dir ----

def send_dir(spec: DirDelivery, parcel: Parcel, file_mode: int = DEFAULT_MODE) -> Receipt:
    """The workbook, then the JSON beside it, each written under a temporary name and renamed:
    a reader watching for the .json finds the .xlsx already complete."""
    xlsx = spec.path / f"{parcel.stem}.xlsx"
    try:
        write_bytes(xlsx, parcel.xlsx_bytes, file_mode)
        write_bytes(spec.path / f"{parcel.stem}.json", parcel.json_bytes, file_mode)
    except OSError as exc:
        detail = exc.strerror or type(exc).__name__
        raise TransportError(f"无法写入 {spec.path}: {detail}", f"cannot write to {spec.path}: {detail}") from None
    return Receipt(str(xlsx))


# ---- retries ----

class _Retryable(TransportError):
    """A failure worth another try: the connection, a timeout, a 5xx."""


def _with_retries(attempts: int, backoff: float, action: Callable[[], T]) -> T:
    """`action` again on a _Retryable failure, waiting backoff, 2*backoff, ... (at most 60 s)."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff, min=backoff, max=60),
        retry=retry_if_exception_type(_Retryable),
        reraise=True,
    )
    return retrying(action)


def _tls_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise TransportError(f"无法读取 ca_file {ca_file}: {detail}", f"cannot read ca_file {ca_file}: {detail}") from None


# ---- http ----

def send_http(spec: HttpDelivery, parcel: Parcel, key: str, token: str | None) -> Receipt:
    """POST the JSON list; a 2xx is delivered, a 5xx or a connection error is retried with
    backoff (the Idempotency-Key lets the server drop a repeat), anything else fails at once."""
    import httpx

    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key,
               "User-Agent": "exitcheck", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    verify: ssl.SSLContext | bool = _tls_context(spec.verify_tls, spec.ca_file) if spec.url.startswith("https:") else True

    def post(client: httpx.Client) -> httpx.Response:
        try:
            response = client.post(spec.url, content=parcel.json_bytes, headers=headers)
        except httpx.TimeoutException:
            raise _Retryable(f"{describe(spec)} 在 {spec.timeout:g} 秒内无应答",
                             f"no answer from {describe(spec)} within {spec.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"无法连接 {describe(spec)}({type(exc).__name__})",
                             f"cannot connect to {describe(spec)} ({type(exc).__name__})") from None
        if response.status_code >= 500:  # its answer quoted too: "maintenance until 06:00" says when to expect it
            raise _Retryable(*_http_status(spec, response.status_code, _answer(response)))
        return response

    with httpx.Client(verify=verify, timeout=spec.timeout, follow_redirects=False) as client:
        response = _with_retries(spec.retries, spec.backoff, lambda: post(client))
    if not 200 <= response.status_code < 300:
        raise TransportError(*_http_status(spec, response.status_code, _answer(response)))
    reference = _response_id(response)
    return Receipt(f"HTTP {response.status_code}" + (f" id={reference}" if reference else ""))


def _answer(response: Any) -> str:
    """The server's answer on one line, cut to _MAX_DETAIL characters (secrets are scrubbed by
    the caller)."""
    return " ".join(response.text.split())[:_MAX_DETAIL]


def _http_status(spec: HttpDelivery, status: int, body: str = "") -> tuple[str, str]:
    """(Chinese, English) for a status that is no delivery, quoting the server's answer as it is."""
    quoted = f": {body}" if body else ""
    return f"{describe(spec)} 返回 HTTP {status}{quoted}", f"HTTP {status} from {describe(spec)}{quoted}"


def _response_id(response: object) -> str | None:
    """The server's own id of the delivery: `id` (or similar) in a JSON body, else a header."""
    try:
        body = response.json()  # type: ignore[attr-defined]
    except ValueError:
        body = None
    if isinstance(body, dict):
        for name in ("id", "receipt", "delivery_id", "request_id"):
            if isinstance(body.get(name), str | int):
                return str(body[name])[:100]
    headers = response.headers  # type: ignore[attr-defined]
    for name in ("X-Request-Id", "Location"):
        if headers.get(name):
            return str(headers[name])[:100]
    return None


# ---- email ----

def send_email(spec: EmailDelivery, parcel: Parcel, username: str | None, password: str | None) -> Receipt:
    """One message, the workbook attached. STARTTLS when configured (or, unset, when offered);
    a login never goes over an unencrypted connection."""
    message = EmailMessage()
    message["From"] = spec.sender
    message["To"] = ", ".join(spec.to)
    message["Subject"] = parcel.subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=spec.sender.rsplit("@", 1)[-1])
    message.set_content(parcel.body)
    message.add_attachment(parcel.xlsx_bytes, maintype=XLSX[0], subtype=XLSX[1], filename=f"{parcel.stem}.xlsx")
    context = _tls_context(spec.verify_tls, spec.ca_file)
    server = _with_retries(spec.retries, spec.backoff, lambda: _connect(spec, context))
    try:
        with server:
            encrypted = spec.ssl
            if spec.starttls or (spec.starttls is None and not spec.ssl and server.has_extn("starttls")):
                server.starttls(context=context)
                server.ehlo()
                encrypted = True
            if username:
                if not encrypted:
                    raise TransportError(f"{describe(spec)}: 拒绝在未加密的连接上登录(请设置 starttls: true 或 ssl: true)",
                                         f"{describe(spec)}: refusing to log in over an unencrypted connection (set starttls: true or ssl: true)")
                server.login(username, password or "")
            refused = server.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise TransportError(f"{describe(spec)}: 服务器拒绝登录({exc.smtp_code})", f"{describe(spec)}: login refused ({exc.smtp_code})") from None
    except smtplib.SMTPNotSupportedError:
        raise TransportError(f"{describe(spec)}: 服务器不支持 STARTTLS", f"{describe(spec)}: the server does not offer STARTTLS") from None
    except smtplib.SMTPException as exc:
        raise TransportError(*_mail_failure(spec, exc, _smtp_detail(exc))) from None
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(*_mail_failure(spec, exc, str(getattr(exc, "reason", None) or exc))) from None
    return Receipt(str(message["Message-ID"]), tuple(sorted(refused)))


def _connect(spec: EmailDelivery, context: ssl.SSLContext) -> smtplib.SMTP:
    """Connect and greet; a refused or timed-out connection is retried, nothing after it is
    (a message may already be on its way)."""
    try:
        if spec.ssl:
            server: smtplib.SMTP = smtplib.SMTP_SSL(spec.host, spec.port, timeout=spec.timeout, context=context)
        else:
            server = smtplib.SMTP(spec.host, spec.port, timeout=spec.timeout)
        server.ehlo()
        return server
    except (OSError, smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected) as exc:
        raise _Retryable(f"无法连接 {spec.host}:{spec.port}({type(exc).__name__})",
                         f"cannot connect to {spec.host}:{spec.port} ({type(exc).__name__})") from None


def _mail_failure(spec: EmailDelivery, exc: Exception, detail: str) -> tuple[str, str]:
    """(Chinese, English) for a message the server refused or a connection that broke: the
    error's type and the server's or the system's words, quoted as they are."""
    detail = detail[:_MAX_DETAIL]
    return (f"{describe(spec)}: 发送失败({type(exc).__name__}): {detail}",
            f"{describe(spec)}: {type(exc).__name__}: {detail}")


def _smtp_detail(exc: smtplib.SMTPException) -> str:
    text = getattr(exc, "smtp_error", b"") or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return " ".join(str(text).split())[:_MAX_DETAIL]
