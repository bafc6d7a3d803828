"""Named input builders `(data, config, seed, input_context) -> tf.data.Dataset`.

- `user_batches`: user batches with ragged positives of every behavior of the data (the
  whole-data task);
- `sampled_examples`: (user, positive, negatives[, masks]) examples with a named sampler
  (the sampled task).
Both shard by `input_context` for `tf.distribute`, and keep their per-epoch state in tf.data.
"""

from mbrec_tf.inputs.sampled_examples import SampledExamples, sampled_examples
from mbrec_tf.inputs.user_batches import ragged_rows, ragged_values, training_users, user_batches

__all__ = [
    "SampledExamples",
    "ragged_rows",
    "ragged_values",
    "sampled_examples",
    "training_users",
    "user_batches",
]
