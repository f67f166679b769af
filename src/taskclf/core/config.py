"""User configuration (``configs/config.toml``) and the per-install title secret."""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from taskclf.core._atomic import atomic_path
from taskclf.core.defaults import DEFAULT_AW_HOST, DEFAULT_TIMEZONE, DEFAULT_USER_ID
from taskclf.core.errors import ConfigError
from taskclf.core.paths import Layout
from taskclf.core.time import get_zone, local_timezone
from taskclf.core.types import validate_user_id


class Config(BaseModel):
    """Contents of ``configs/config.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = DEFAULT_USER_ID
    timezone: str = DEFAULT_TIMEZONE
    aw_host: str = DEFAULT_AW_HOST
    user_timezones: dict[str, str] = Field(default_factory=dict)

    @field_validator("user_id")
    @classmethod
    def _uid(cls, v: str) -> str:
        return validate_user_id(v, where="in config.toml")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        get_zone(v)
        return v

    @field_validator("user_timezones")
    @classmethod
    def _tzs(cls, v: dict[str, str]) -> dict[str, str]:
        for uid, tz in v.items():
            validate_user_id(uid, where="in config.toml [user_timezones]")
            get_zone(tz)
        return v

    def timezone_for(self, user_id: str) -> str:
        """The configured zone of ``user_id`` (per-user override, else the default)."""
        return self.user_timezones.get(user_id, self.timezone)


def load_config(layout: Layout) -> Config:
    """Read ``config.toml``; a missing file gives the defaults.

    Without a ``timezone`` (no file, or a file without the key) the default zone is this
    machine's (:func:`~taskclf.core.time.local_timezone`, UTC when it cannot be told): local
    days and hours are those of the person at this computer.
    """
    path = layout.config_file
    if not path.exists():
        return Config(timezone=local_timezone())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "timezone" not in data:
            data["timezone"] = local_timezone()
        return Config.model_validate(data)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"config file '{path}': {exc.errors()[0]['msg']}") from None


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def config_has_timezone(layout: Layout) -> bool:
    """Whether ``config.toml`` exists and sets ``timezone`` (else the machine's zone applies)."""
    try:
        return "timezone" in tomllib.loads(layout.config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{layout.config_file}' is not valid TOML: {exc}") from None


def save_config(layout: Layout, config: Config, *, write_timezone: bool = True) -> Path:
    """Write ``config.toml`` atomically.

    ``write_timezone=False`` leaves the ``timezone`` key out, so the machine's zone keeps
    applying (see :func:`load_config`) instead of being pinned to the one loaded now.
    """
    lines = [
        f"user_id = {_toml_str(config.user_id)}",
        *([f"timezone = {_toml_str(config.timezone)}"] if write_timezone else []),
        f"aw_host = {_toml_str(config.aw_host)}",
        "",
        "[user_timezones]",
        *(f"{_toml_str(k)} = {_toml_str(v)}" for k, v in sorted(config.user_timezones.items())),
    ]
    with atomic_path(layout.config_file) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return layout.config_file


def load_or_create_title_secret(layout: Layout) -> bytes:
    """The per-install secret that keys all title hashing (created once, mode 0600)."""
    path = layout.title_secret
    if not path.exists():
        with atomic_path(path) as tmp:
            os.chmod(tmp, 0o600)
            tmp.write_text(secrets.token_hex(32) + "\n", encoding="ascii")
    text = path.read_text(encoding="ascii").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(
            f"title secret '{path}' is not hex; delete it to create a new one"
        ) from None
    if len(secret) < 16:
        raise ConfigError(f"title secret '{path}' is too short ({len(secret)} bytes)")
    return secret
