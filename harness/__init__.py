"""sspi-harness: conformance and fuzz testing for SSPI message-protection functions."""

from __future__ import annotations

__version__ = "0.1.0"
