"""The worker child's entry point, kept apart so that the protocol's classes are pickled under
their real module name (``harness.runner.worker``), not ``__main__``."""

from __future__ import annotations

import sys

from harness.runner.worker import serve_forever

if __name__ == "__main__":
    serve_forever(sys.argv[1:])
