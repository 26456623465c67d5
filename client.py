"""The staging agent from a source tree: ``python3 client.py --config FILE [--loop]``.

The same as ``python3 pullre-agent.pyz ...`` (``python -m pullre agent bundle`` builds that one
file); see pullre/agent/main.py.
"""

from __future__ import annotations

import sys

from pullre.agent.main import FALLBACK_S, WAIT_S, main

__all__ = ["FALLBACK_S", "WAIT_S", "main"]

if __name__ == "__main__":
    sys.exit(main())
