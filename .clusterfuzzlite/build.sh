#!/bin/bash -eu
# ClusterFuzzLite builds dyad's fuzz targets exactly as OSS-Fuzz does.
exec "$SRC/dyad/fuzz/oss-fuzz/build.sh"
