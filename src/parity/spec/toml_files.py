"""Reading a TOML file an analyst wrote (a models.toml, a priors file): its table, or a
one-line UsageError that names the file and what is wrong with it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from parity.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: str | Path, kind: str) -> dict[str, Any]:
    """The document in `path`; `kind` names the file in errors ("config", "priors")."""
    where = str(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (FileNotFoundError, IsADirectoryError):
        raise UsageError(f"{kind} file {where!r} not found") from None
    except PermissionError:
        raise UsageError(f"{kind} file {where!r} cannot be read (permission denied)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{kind} file {where!r} is not valid TOML: {exc}") from None
