"""Typed contracts: every gradient-trained model's input builder yields the batch TensorSpecs
its recipe declares, and its forward pass returns the outputs its task consumes."""

import pytest
import tensorflow as tf

from mbrec_tf import contracts, registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.models.ehcf_memory import EHCFMemory

TRAINED = sorted(name for name, spec in registry.REGISTRY.items() if not spec.closed_form)
SMALL = {"embedding_dim": 4, "batch_size": 8, "num_negatives": 3}


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=12, num_items=15, behaviors=("view", "cart", "buy"))


def conforms(values, spec) -> bool:
    """True when `values` has `spec`'s structure and each tensor is compatible with its spec."""
    try:
        tf.nest.assert_same_structure(values, spec, expand_composites=False)
    except (TypeError, ValueError):
        return False
    pairs = zip(tf.nest.flatten(values), tf.nest.flatten(spec), strict=True)
    return all(s.is_compatible_with(v) for v, s in pairs)


def small_config(name: str):
    """The model's config with small sizes (only the fields it has)."""
    spec = registry.get(name)
    fields = {f for f in spec.config_cls.__dataclass_fields__}
    return registry.resolve_config(
        name, "generated", {k: v for k, v in SMALL.items() if k in fields}
    )


def expected_outputs(name, model, outputs, data, config) -> dict:
    """The outputs contract of `model`'s family, for these sizes."""
    if "scores" in outputs:
        behaviors = tuple(outputs["scores"]) if isinstance(outputs["scores"], dict) else ()
        return contracts.score_outputs_spec(config.num_negatives, behaviors)
    trained = registry.get(name).training_data(data, config)
    sizes = (data.num_items, config.embedding_dim, len(trained.behaviors))
    if isinstance(model, EHCFMemory):
        return contracts.memory_outputs_spec(*sizes)
    return contracts.factor_outputs_spec(*sizes)


@pytest.mark.parametrize("name", TRAINED)
def test_batches_and_outputs_follow_the_contract(name, data):
    spec = registry.get(name)
    config = small_config(name)
    dataset = spec.build_inputs(data, config, seed=0)
    declared = spec.batch_spec(data, config)
    assert dataset.element_spec == declared, name

    model = spec.build(data, config)
    batch = next(iter(dataset))
    outputs = model(batch, training=True)
    wanted = expected_outputs(name, model, outputs, data, config)
    assert set(outputs) == set(wanted), (name, sorted(outputs))
    assert conforms(outputs, wanted), name


def test_conforms_rejects_a_wrong_shape_or_a_missing_key():
    spec = contracts.score_outputs_spec(3)
    assert conforms({"scores": tf.zeros([2, 4])}, spec)
    assert not conforms({"scores": tf.zeros([2, 5])}, spec)
    assert not conforms({"logits": tf.zeros([2, 4])}, spec)
    assert not conforms({"scores": tf.zeros([2, 4], tf.int32)}, spec)


def test_user_batch_spec_names_the_ragged_positives_of_each_behavior():
    spec = contracts.user_batch_spec(("cart", "buy"), weighted=True)
    assert set(spec) == {"user", "positives", "positive_weights"}
    assert set(spec["positives"]) == {"cart", "buy"}
    assert spec["positives"]["buy"].dtype == tf.int32
    assert spec["positive_weights"]["cart"].dtype == tf.float32
