#!/usr/bin/env python3
"""atheris target `descriptor` (see docs/fuzzing.md), driven by libFuzzer.

    mkdir -p work   # libFuzzer adds new inputs to the first corpus directory
    python fuzz/fuzz_descriptor.py --adapter reference -max_total_time=60 \
        work fuzz/corpus/descriptor
    python fuzz/fuzz_descriptor.py --adapter pyspnego crash-<sha1>      # replay one input

Options before the libFuzzer flags: --adapter NAME (default $SSPI_FUZZ_ADAPTER or reference),
--isolation auto|worker|none, --timeout S, --record DIR (record findings and go on).
"""

import sys

from harness.fuzzing.child import main

if __name__ == "__main__":
    sys.exit(main("descriptor"))
