#!/bin/bash -eu
# ClusterFuzzLite build script: the real one is fuzz/build.sh (shared with OSS-Fuzz).
exec "${SRC}/sspi-harness/fuzz/build.sh"
