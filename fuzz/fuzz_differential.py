#!/usr/bin/env python3
"""atheris target `differential` (see docs/fuzzing.md), driven by libFuzzer.

    python fuzz/fuzz_differential.py --adapter reference -max_total_time=60 fuzz/corpus/differential
    python fuzz/fuzz_differential.py --adapter pyspnego crash-<sha1>      # replay one input

Options before the libFuzzer flags: --adapter NAME (default $SSPI_FUZZ_ADAPTER or reference),
--isolation auto|worker|none, --timeout S, --record DIR (record findings and go on).
"""

import sys

from harness.fuzzing.child import main

if __name__ == "__main__":
    sys.exit(main("differential"))
