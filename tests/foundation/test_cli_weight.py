"""Every service starts through the ``lauks`` command, so building its parser must load nothing heavy: the
metadata store's SQLAlchemy and Alembic cost each of the gateway, the simulator and ``lauks up`` about 27 MB
(bench/footprint.py) when one part's ``register`` imported its tools to name its choices."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "fastapi", "pyarrow", "pandas", "jinja2", "esptool", "metastore", "web", "api.app")


def test_building_the_lauks_parser_loads_no_heavy_library() -> None:
    script = ("import sys, stack.cli; stack.cli.build_parser(); "
              f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "", f"building the parser loaded: {result.stdout.strip()}"
