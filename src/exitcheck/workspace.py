"""The workspace configuration (exitcheck.yaml) and the header mapping file."""

from __future__ import annotations

from pathlib import Path

import yaml

from exitcheck.errors import ConfigError
from exitcheck.registers.schema import REGISTERS, field_names


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
                import difflib

                near = difflib.get_close_matches(str(name), known, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ConfigError(f"{where}: headers.{register}: 字段 {name!r} 不存在{hint}", f"{where}: headers.{register}: no field {name!r}{hint}")
        out[register] = {str(k): str(v) for k, v in mapping.items()}
    return out
