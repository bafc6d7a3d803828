"""Config dataclasses, the registry's resolution order, and flag generation."""

import dataclasses

import pytest

from mbrec_tf import config as config_lib
from mbrec_tf import recipes, registry


@dataclasses.dataclass(frozen=True)
class _ToyConfig(config_lib.TrainConfig):
    weights: tuple[float, ...] = config_lib.field((1.0, 2.0), "Per-behavior weights.")
    use_bias: bool = config_lib.field(False, "Adds a bias.")


def test_make_config_layers_override_in_order():
    config = config_lib.make_config(
        _ToyConfig, {"epochs": 3, "weights": "0.5,0.25"}, {"epochs": "7", "use_bias": "true"}
    )
    assert config.epochs == 7
    assert config.weights == (0.5, 0.25)
    assert config.use_bias is True
    assert config.embedding_dim == 64


def test_make_config_rejects_unknown_and_badly_typed_values():
    with pytest.raises(ValueError, match="no hyper-parameter 'epoch'"):
        config_lib.make_config(_ToyConfig, {"epoch": 3})
    with pytest.raises(ValueError, match="embedding_dim='big'"):
        config_lib.make_config(_ToyConfig, {"embedding_dim": "big"})
    with pytest.raises(ValueError, match="use_bias"):
        config_lib.make_config(_ToyConfig, {"use_bias": "maybe"})


def test_to_dict_is_json_friendly():
    assert config_lib.to_dict(_ToyConfig())["weights"] == [1.0, 2.0]


def test_registry_resolves_defaults_then_dataset_then_overrides():
    spec = registry.get("popularity")
    assert spec.inputs is None
    config = registry.resolve_config("popularity", "anything", {"batch_size": 8})
    assert config.batch_size == 8
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        registry.get("nope")


def test_every_registered_model_builds_on_tiny_data():
    from mbrec_tf.data.generated import random_data

    data = random_data(num_users=12, num_items=15, behaviors=("view", "buy"))
    for name, spec in registry.REGISTRY.items():
        config = registry.resolve_config(name, data.name, {"embedding_dim": 4})
        model = spec.build(data, config)
        scores = model.score_users(__import__("tensorflow").constant([0, 1]))
        assert scores.shape == (2, data.num_items), name


def test_every_registry_entry_extends_its_recipes_config():
    for spec in registry.REGISTRY.values():
        assert issubclass(spec.config_cls, spec.recipe.config_base), spec.name
        assert spec.task is not None and spec.closed_form == (spec.inputs is None), spec.name


def test_a_recipe_refuses_a_config_of_another_family():
    with pytest.raises(TypeError, match="must extend WholeDataConfig"):
        registry.ModelSpec(
            name="wrong",
            config_cls=config_lib.SampledConfig,
            scorer=lambda data, config: None,
            recipe=recipes.WHOLE_DATA,
        )
    with pytest.raises(TypeError, match="needs the model's task"):
        registry.ModelSpec(
            name="no_task",
            config_cls=config_lib.TrainConfig,
            scorer=lambda data, config: None,
            recipe=recipes.CLOSED_FORM,
        )
