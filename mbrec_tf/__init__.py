"""mbrec_tf: multi-behavior recommendation for TensorFlow (tf-keras, TFRS, TFDS).

TFRS 0.7.7 needs legacy Keras, so `TF_USE_LEGACY_KERAS=1` is set here, before anything
touches `tf.keras`.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines hidden when logs are asked to be quiet.

    TensorFlow's native libraries log a few lines while loading (oneDNN, CUDA drivers)
    through absl before `TF_CPP_MIN_LOG_LEVEL` takes effect; with that variable at 2 or
    more, the process's stderr is pointed at /dev/null for the import only. Python errors
    raised by the import are shown as usual (they print after stderr is restored). Set
    `TF_CPP_MIN_LOG_LEVEL=0` to see every line.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured by a host program)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()

__version__ = "0.1.0"
