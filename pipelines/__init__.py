"""The command-line pipelines (`python -m pipelines.<name>`).

Importing the package is every pipeline's one bootstrap: `mbrec_tf` sets the TensorFlow
environment (legacy Keras, quiet C++ logs) and imports TensorFlow with its start-up lines
hidden, before a pipeline module imports anything else; `pipelines.flags.run` then keeps
TensorFlow's and TFDS's INFO logging out of the output.
"""

import mbrec_tf  # noqa: F401 - the bootstrap above
