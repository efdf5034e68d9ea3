"""Where the test suite finds shared data: ``$ZANZI_SHARED_DIR`` or the vendored copy."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("ZANZI_SHARED_DIR") or REPO / "tests" / "data" / "shared")
SPICEDB_CONFORMANCE = SHARED / "conformance" / "spicedb"
