"""streamprint: streaming media fingerprints over gRPC."""

import os as _os

# The engine runs many small matrix products per session and parallelises across sessions;
# a multi-threaded BLAS only adds contention (measured: OpenBLAS with 2 threads makes a
# 4-frame mel projection 100x slower on a busy 2-core machine). Set before numpy loads;
# an explicit environment setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
