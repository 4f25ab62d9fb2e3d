"""The TUI's settings file: the theme and the choices a user makes on the screens.

``tui.toml`` in the per-user config folder (platformdirs: ``~/.config/smart-suggest`` on
Linux, ``$XDG_CONFIG_HOME`` respected), read with ``tomllib`` and written back whole when a
setting changes in the app (Harlequin and Posting keep theirs the same way)::

    theme = "nord"
    strategies = ["v1", "v2", "popular"]   # side by side on the Recommendations screen
    sequential = true                      # experiments: always-valid statistics
    show_simulated = false                 # list the sim-<experiment>-<n> visitors too
    export_dir = "/home/me/reports"        # where screenshots and exports go

A file that cannot be read is reported once and never overwritten, so a hand edit with a
typo is not lost. Unknown keys are kept as they are when the file is written back.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "tui.toml"


def config_path() -> Path:
    import platformdirs

    return platformdirs.user_config_path("smart-suggest") / FILE_NAME


@dataclass
class Settings:
    theme: str | None = None
    strategies: list[str] = field(default_factory=lambda: ["v1", "v2"])
    sequential: bool = True
    show_simulated: bool = False
    export_dir: str | None = None
    #: Where the settings live; None keeps them in memory only (tests, a broken file).
    path: Path | None = None
    #: Why the file could not be used (shown once by the app), or "".
    problem: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self) -> str:
        """Write the file (atomically); returns "" or one line saying why it failed."""
        if self.path is None:
            return ""
        values: dict[str, Any] = dict(self.extra)
        values.update(
            strategies=list(self.strategies),
            sequential=self.sequential,
            show_simulated=self.show_simulated,
        )
        if self.theme:
            values["theme"] = self.theme
        if self.export_dir:
            values["export_dir"] = self.export_dir
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(dumps(values), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            return f"could not save settings to {self.path}: {exc.strerror or exc}"
        return ""


def dumps(values: dict[str, Any]) -> str:
    """Simple TOML for flat tables of strings, booleans, numbers and lists of strings."""
    lines = ["# smart-suggest TUI settings (written by the app; edits are kept)"]
    for key, value in values.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    # A JSON string is a TOML basic string for everything json.dumps emits (ASCII escapes).
    return json.dumps(str(value))


def load(path: Path | None = None) -> Settings:
    """The settings in ``path`` (default: the config folder); defaults when there is none."""
    path = config_path() if path is None else path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings(path=path)
    except OSError as exc:
        return Settings(path=None, problem=f"cannot read {path}: {exc.strerror or exc}")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return Settings(path=None, problem=f"ignored {path} (not valid TOML: {exc})")
    settings = Settings(path=path)
    problems = []
    for key, value in data.items():
        if key in ("theme", "export_dir"):
            if isinstance(value, str) and value:
                setattr(settings, key, value)
            else:
                problems.append(f"{key} must be a string")
        elif key == "strategies":
            if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
                settings.strategies = list(dict.fromkeys(value))
            else:
                problems.append("strategies must be a list of strategy names")
        elif key in ("sequential", "show_simulated"):
            if isinstance(value, bool):
                setattr(settings, key, value)
            else:
                problems.append(f"{key} must be true or false")
        elif isinstance(value, dict):
            # Tables are not ours to rewrite: keep the file as it is.
            settings.path = None
            problems.append(f"unknown table [{key}]: settings will not be saved")
        else:
            settings.extra[key] = value
    if problems:
        settings.problem = f"{path}: " + "; ".join(problems) + " (defaults used)"
    return settings
