#!/bin/bash -eu
# Build the atheris targets of fuzz/ for OSS-Fuzz and ClusterFuzzLite (docs/fuzzing.md).
#
# Runs inside gcr.io/oss-fuzz-base/base-builder-python with the repository at
# $SRC/sspi-harness; writes one fuzzer per target and adapter to $OUT
# (fuzz_<target>_<adapter>), each with its seed corpus, dictionary and options.
# Only in-process adapters are built: a frozen (PyInstaller) fuzzer cannot start the
# worker subprocess that native adapters need, and OSS-Fuzz reports crashes itself.

REPO="${SRC}/sspi-harness"
ADAPTERS="${SSPI_FUZZ_ADAPTERS:-reference pyspnego}"
TARGETS="verify decrypt descriptor handshake differential properties"

cd "${REPO}"
pip3 install .

for target in ${TARGETS}; do
  for adapter in ${ADAPTERS}; do
    name="fuzz_${target}_${adapter}"
    # The adapter is fixed at build time: OSS-Fuzz runs fuzzers without arguments.
    cat > "${WORK}/${name}.py" <<PY
import os
import sys

os.environ.setdefault("SSPI_FUZZ_ADAPTER", "${adapter}")
os.environ.setdefault("SSPI_HYPOTHESIS_DB", "/tmp/sspi-harness-hypothesis")

from harness.fuzzing.child import main

sys.exit(main("${target}"))
PY
    compile_python_fuzzer "${WORK}/${name}.py" \
      --hidden-import=harness.adapters.reference \
      --hidden-import=harness.adapters.spnego_ntlm \
      --hidden-import=harness.fuzzing.targets \
      --hidden-import=harness.fuzzing.tokens \
      --hidden-import=harness.fuzzing.properties \
      --hidden-import=harness.fuzzing.bench \
      --hidden-import=scapy.layers.ntlm \
      --collect-submodules=spnego \
      --collect-submodules=harness
    (cd "${REPO}/fuzz/corpus/${target}" && zip -q -r "${OUT}/${name}_seed_corpus.zip" .)
    cp "${REPO}/fuzz/dicts/${target}.dict" "${OUT}/${name}.dict"
    printf '[libfuzzer]\nmax_len = 4096\ndict = %s.dict\n' "${name}" > "${OUT}/${name}.options"
  done
done
