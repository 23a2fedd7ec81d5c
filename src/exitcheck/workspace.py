"""The workspace configuration (exitcheck.yaml) and the header mapping file.

A workspace is a folder with an `exitcheck.yaml`: which registers to read, which rules to
apply, where outputs and state go, and which departments receive which income bands and how.
`config_path.find_config` looks for it in a folder and its parents (as git finds `.git`);
`load_config` validates it with pydantic and resolves every path against the file's own
folder, so a cron job started anywhere reads the same files. Every mistake is a ConfigError
(exit 4) naming the file and the line. Secrets never live in the file: it names environment
variables instead.
"""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from exitcheck.days import day_problem, parse_day
from exitcheck.errors import ConfigError
from exitcheck.i18n import did_you_mean
from exitcheck.registers.limits import Limits
from exitcheck.registers.schema import REGISTERS, field_names
from exitcheck.setting_errors import Mistake, setting_error

#: Department ids end up in file names and SQL rows: keep them to a safe alphabet.
DEPARTMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: The longest retention: 100 years. Beyond it the cutoff date would fall before year 1.
MAX_RETENTION_DAYS = 36500
#: What a bad file_mode is told, whatever its shape.
_OCTAL = ("应为八进制的权限, 写在引号里, 如 '0600'", "file_mode must be an octal mode such as '0600' (write it in quotes)")
#: Keys that would put a secret into the file itself; the error says to name a variable instead.
SECRET_KEYS = {"token": "token_env", "password": "password_env", "username": "username_env",
               "user": "username_env", "secret": "token_env"}

EMAIL = r"^[^@\s]+@[^@\s]+$"
EnvName = Annotated[str, Field(pattern=ENV_NAME)]
#: A Dask scheduler's address: tcp://10.0.0.5:8786, tls://host:8786, or host:port.
SCHEDULER = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?/?")


class _Loader(yaml.SafeLoader):
    """YAML as people read it: `4200_4500` (a band id) stays text. YAML 1.1 reads digits with
    underscores as the number 42004500, which would turn the issue's own example into nonsense.
    A date stays text too, for pydantic to check at its key: PyYAML's own reading of
    `2020-06-31` raises a bare ValueError that knows neither the key nor the line."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[01]+|[-+]?0[0-7]+|[-+]?(?:0|[1-9][0-9]*)|[-+]?0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def read_header_map(path: Path) -> dict[str, dict[str, str]]:
    """A YAML mapping {register: {your header: field}}; every field must exist."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: 无法读取表头映射文件({exc.strerror})", f"{path}: cannot read the header mapping ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: 表头映射文件不是有效的 YAML({exc})", f"{path}: the header mapping is not valid YAML ({exc})") from None
    return check_header_map(data, str(path))


def check_header_map(data: object, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: headers 应为 {{登记表: {{表头: 字段}}}}", f"{where}: headers must be {{register: {{header: field}}}}")
    out: dict[str, dict[str, str]] = {}
    for register, mapping in data.items():
        if register not in REGISTERS:
            raise ConfigError(f"{where}: 未知的登记表 {register!r}(应为 {', '.join(REGISTERS)})", f"{where}: unknown register {register!r} (expected one of {', '.join(REGISTERS)})")
        if not isinstance(mapping, dict):
            raise ConfigError(f"{where}: headers.{register} 应为 {{表头: 字段}}", f"{where}: headers.{register} must map headers to fields")
        known = field_names(register)
        for name in mapping.values():
            if name not in known:
                hint = did_you_mean(str(name), known)[1]
                raise ConfigError(f"{where}: headers.{register}: 字段 {name!r} 不存在{hint}", f"{where}: headers.{register}: no field {name!r}{hint}")
        out[register] = {str(k): str(v) for k, v in mapping.items()}
    return out


# ---- delivery targets ----

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DirDelivery(_Strict):
    """Files in a folder (a share the department reads, or a folder synced to it)."""

    type: Literal["dir"]
    path: Path


class HttpDelivery(_Strict):
    """A POST of the JSON list to the department's inbox."""

    type: Literal["http"]
    url: str
    token_env: EnvName | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    timeout: float = Field(30.0, gt=0, le=600)
    retries: int = Field(3, ge=1, le=10, description="attempts in all, on connection errors and 5xx")
    backoff: float = Field(2.0, ge=0, le=300, description="first wait between attempts, doubling")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Mistake("应为 http:// 或 https:// 开头的网址", "url must be an http:// or https:// address")
        if parts.username or parts.password:
            raise Mistake("网址中不能带用户名或密码: 请把令牌放进环境变量, 用 token_env 写出变量名",
                          "url must not carry a user or password: name the token with token_env")
        return value


class EmailDelivery(_Strict):
    """One message with the workbook attached. `starttls` unset: used when the server offers it."""

    type: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool | None = None
    ssl: bool = False
    verify_tls: bool = True
    ca_file: Path | None = None
    sender: str = Field(alias="from", pattern=EMAIL)
    to: list[Annotated[str, Field(pattern=EMAIL)]] = Field(min_length=1)
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    timeout: float = Field(30.0, gt=0, le=600)
    retries: int = Field(3, ge=1, le=10, description="attempts to connect in all")
    backoff: float = Field(2.0, ge=0, le=300)

    @model_validator(mode="after")
    def _login_pair(self) -> EmailDelivery:
        if (self.username_env is None) != (self.password_env is None):
            raise Mistake("username_env 和 password_env 要一起写", "username_env and password_env go together")
        if self.ssl and self.starttls:
            raise Mistake("ssl 和 starttls 只能选一个(ssl 用端口 465, starttls 用端口 587)",
                          "ssl and starttls exclude each other (ssl: port 465, starttls: port 587)")
        return self


Delivery = Annotated[DirDelivery | HttpDelivery | EmailDelivery, Field(discriminator="type")]


class Department(_Strict):
    """A department receiving income-band lists: which bands, which households, which columns."""

    name: str = ""
    bands: list[str] | None = Field(None, min_length=1)
    columns: list[str] | None = Field(None, min_length=1)
    where: str | None = None
    deliver: Delivery | None = None

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: list[str] | None) -> list[str] | None:
        if columns is None:
            return None
        from exitcheck.income_bands import list_columns  # bands owns what a list may carry

        known = list_columns()
        for name in columns:
            if name not in known:
                hint_zh, hint_en = did_you_mean(name, known)
                raise Mistake(f"没有 {name} 这一列{hint_zh}", f"unknown column {name!r}{hint_en}")
        if len(set(columns)) != len(columns):
            raise Mistake("有一列写了两次", "a column is listed twice")
        return columns


class Townships(_Strict):
    """Each township's own gap workbook, sent by `exitcheck run` through the same transports and
    ledger as the departments' lists (recipient `township:<name>`). `deliver` is the target of
    every township (a `dir` path gets a sub-folder per township); `each` gives a township its own
    target (its own mailbox, say); `only` limits the townships served (default: all of them)."""

    deliver: Delivery | None = None
    each: dict[str, Delivery] = Field(default_factory=dict)
    only: list[str] | None = Field(None, min_length=1)

    def targets(self) -> list[Delivery]:
        return [t for t in (self.deliver, *self.each.values()) if t is not None]


def _settings_of(cls: type[Any]) -> type[BaseModel]:
    """A pydantic model of a plain dataclass of settings: the same names, types, defaults and
    descriptions, and its bound (`above` in a field's metadata) as gt, so that a mistake in
    exitcheck.yaml is reported at its key like any other. The dataclass itself needs no pydantic
    (registers/limits.py says why)."""
    hints = get_type_hints(cls)
    return create_model(
        cls.__name__,
        __config__=ConfigDict(extra="forbid"),
        **{f.name: (hints[f.name], Field(f.default, gt=f.metadata["above"], description=f.metadata["description"])) for f in fields(cls)},
    )


LimitsSettings = _settings_of(Limits)


def _as_limits(settings: BaseModel) -> Limits:
    return Limits(**settings.model_dump())


class WorkspaceConfig(_Strict):
    """exitcheck.yaml, validated, every path absolute."""

    registers: list[Path] = Field(default_factory=list)
    rules: Path | None = None
    out: Path = Path("out")
    state: Path = Path(".exitcheck")
    as_of: date | None = None
    headers: dict[str, dict[str, str]] | None = None
    # checked as LimitsSettings (each mistake at its key), then held as the reader's Limits
    limits: Annotated[LimitsSettings, AfterValidator(_as_limits)] = Field(default_factory=Limits)  # type: ignore[valid-type]
    file_mode: int = 0o600
    departments: dict[Annotated[str, Field(pattern=DEPARTMENT_ID)], Department] = Field(default_factory=dict)
    # For the nightly run (issue 5): accepted and kept, used by `exitcheck run`.
    townships: Townships | None = None
    retention_days: int = 60
    # How `exitcheck run` audits (issue 8): `local` reads every register as one county in this
    # process; `dask` audits each entry of `registers` as a county, one task each, on the Dask
    # scheduler at `scheduler`, or on a local cluster of `workers` processes.
    engine: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    workers: int | None = Field(None, ge=1, strict=True)

    _path: Path | None = PrivateAttr(None)
    _text: str = PrivateAttr("")

    @field_validator("registers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | Path) else value

    @field_validator("headers", mode="before")
    @classmethod
    def _header_map(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return read_header_map(_resolve(Path(value), _root(info)))
        return check_header_map(value, "headers")

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("engine", "dask") != "dask":
            raise Mistake("只用于 engine: dask", "only with engine: dask")
        value = value.strip()
        if not SCHEDULER.fullmatch(value):
            raise Mistake("应为 Dask 调度器的地址, 如 tcp://10.0.0.5:8786",
                          "expected the address of a Dask scheduler, such as tcp://10.0.0.5:8786")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return None
        if info.data.get("engine", "dask") != "dask":
            raise Mistake("只用于 engine: dask", "only with engine: dask")
        if info.data.get("scheduler"):
            raise Mistake("只用于本机集群; scheduler: 所指的集群有自己的 workers",
                          "sizes the local cluster only; the cluster at scheduler: has its own workers")
        return value

    @field_validator("as_of", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        """A day written as --as-of takes it (exitcheck.days: as a register's date cell); the
        message says which forms are accepted."""
        if value is None or isinstance(value, date):
            return value
        text = str(value).strip()
        day = parse_day(text)
        if day is None:
            raise Mistake(*day_problem(text))
        return day

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if not 1 <= value <= MAX_RETENTION_DAYS:
            raise Mistake(f"应为 1 到 {MAX_RETENTION_DAYS} 天(100 年)之间的整数, 现为 {value}",
                          f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS} (100 years), found {value}")
        return value

    @field_validator("file_mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> int:
        """'0640', '0o640' or 0o640 (YAML reads a bare 0640 as octal already)."""
        if isinstance(value, bool):
            raise Mistake(*_OCTAL)
        if isinstance(value, str):
            text = value.strip().lower().removeprefix("0o")
            if not re.fullmatch(r"[0-7]{3,4}", text):
                raise Mistake(*_OCTAL)
            value = int(text, 8)
        if not isinstance(value, int) or not 0 <= value <= 0o777:
            raise Mistake(*_OCTAL)
        if value & 0o600 != 0o600:
            raise Mistake("须让文件主人可读可写(至少 0600)", "file_mode must let the owner read and write (0600 at least)")
        if value & 0o007:
            raise Mistake("不能给其他用户任何权限(最后一位须为 0, 如 0600 或 0640): 输出文件含姓名、身份证号和收入等个人信息",
                          "must give other users no access (the last digit 0, such as 0600 or 0640): "
                          "the outputs hold names, ID numbers and incomes")
        return value

    @model_validator(mode="after")
    def _absolute(self, info: ValidationInfo) -> WorkspaceConfig:
        root = _root(info)
        self.registers = [_resolve(p, root) for p in self.registers]
        self.rules = _resolve(self.rules, root) if self.rules else None
        self.out = _resolve(self.out, root)
        self.state = _resolve(self.state, root)
        targets = [d.deliver for d in self.departments.values()] + (self.townships.targets() if self.townships else [])
        for target in targets:
            if isinstance(target, DirDelivery):
                target.path = _resolve(target.path, root)
            if isinstance(target, HttpDelivery | EmailDelivery) and target.ca_file:
                target.ca_file = _resolve(target.ca_file, root)
        return self

    @property
    def path(self) -> Path | None:
        """The file this configuration was read from (None when built in code)."""
        return self._path

    def position(self, *location: str | int) -> str:
        """'exitcheck.yaml:12' for a key path, so that later checks can point at the line."""
        if self._path is None:
            return "exitcheck.yaml"
        from exitcheck.rules.model import _line_of

        line = _line_of(self._text, tuple(location))
        return f"{self._path}:{line}" if line else str(self._path)

    def department(self, department_id: str) -> Department:
        return self.departments[department_id]


def _root(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("root") or Path.cwd())


def _resolve(path: Path, root: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def load_config(path: Path) -> WorkspaceConfig:
    """Read and validate exitcheck.yaml; paths in it resolve against its folder."""
    path = path.resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: 无法读取工作区配置({exc.strerror})", f"{path}: cannot read the workspace configuration ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: 工作区配置应为 UTF-8 编码", f"{path}: the workspace configuration must be UTF-8") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader with stricter numbers
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # ValueError: an explicit tag such as `!!int x`
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{where}: 不是有效的 YAML({problem})", f"{where}: not valid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: 工作区配置应为键值映射", f"{path}:1: the workspace configuration must be a mapping")
    try:
        config = WorkspaceConfig.model_validate(data, context={"root": path.parent})
    except ValidationError as exc:
        raise _config_error(path, text, data, exc) from None
    except ConfigError as exc:  # from the header mapping, which checks itself
        from exitcheck.rules.model import _line_of

        where = f"{path}:{_line_of(text, ('headers',)) or 1}"
        raise ConfigError(f"{where}: {exc.zh}", f"{where}: {exc.en}") from None
    config._path, config._text = path, text
    return config


def _config_error(path: Path, text: str, data: object, exc: ValidationError) -> ConfigError:
    """The first problem, with its line, in the clerk's words (setting_errors); a secret put in
    the file, and the value of a key that may hold one, are never repeated."""
    from exitcheck.setting_errors import dotted, located, position

    first = next((e for e in exc.errors() if e["type"] == "extra_forbidden"), None)
    location = located(data, first) if first else ()
    if location and location[-1] in SECRET_KEYS:
        where, key, variable = position(path, text, location), dotted(location), SECRET_KEYS[str(location[-1])]
        return ConfigError(
            f"{where}: {key}: 密钥不要写在配置文件里; 请放进环境变量, 并用 {variable} 写出变量名",
            f"{where}: {key}: secrets do not belong in the file; put it in an environment variable and name it with {variable}",
        )
    return setting_error(path, text, data, exc, known_keys=_known_keys, private=_may_hold_secret, patterns=PATTERN_WORDS)


#: The patterns of exitcheck.yaml's keys as a clerk says them.
PATTERN_WORDS = {
    ENV_NAME: ("环境变量名(字母、数字和下划线, 不以数字开头)",
               "the name of an environment variable (letters, digits and _, not starting with a digit)"),
    EMAIL: ("邮件地址, 如 fupinban@example.cn", "an email address, such as office@example.cn"),
    DEPARTMENT_ID: ("部门编号(字母、数字、_ 和 -, 至多 64 个字符)", "a department id (letters, digits, _ and -, at most 64 characters)"),
}


def _may_hold_secret(location: tuple[Any, ...]) -> bool:
    """A token typed where its variable's name belongs, or a password in a URL: not repeated in
    an error that cron mails."""
    return bool(location) and (location[-1] == "url" or location[-1] in SECRET_KEYS.values())


def _known_keys(parent: tuple[Any, ...]) -> list[str]:
    """Setting names allowed where an unknown one was found, for 'did you mean'."""
    model: type[BaseModel] = WorkspaceConfig
    if len(parent) >= 2 and parent[0] == "departments":
        model = Department
        if len(parent) >= 3 and parent[2] == "deliver":
            return sorted({name for m in (DirDelivery, HttpDelivery, EmailDelivery) for name in _keys(m)})
    if parent and parent[0] == "limits":
        model = LimitsSettings
    if parent and parent[0] == "townships":
        if len(parent) >= 2 and parent[1] in ("deliver", "each"):
            return sorted({name for m in (DirDelivery, HttpDelivery, EmailDelivery) for name in _keys(m)})
        model = Townships
    return _keys(model)


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]
