"""Search spaces, parameter-to-config mapping and configuration files of the tuner."""

import json

import pytest

from mbrec_tf import registry, tuning
from mbrec_tf.data.generated import random_data
from mbrec_tf.errors import UserError


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=12, num_items=15, behaviors=("view", "cart", "buy"))


def test_ehcf_space_has_a_weight_and_coefficient_per_behavior(data):
    space = tuning.default_search_space("ehcf", data)
    for behavior in ("view", "cart", "buy"):
        assert f"negative_weight[{behavior}]" in space
        assert f"loss_coefficients[{behavior}]" in space
    assert {"keep_prob", "learning_rate"} <= set(space)
    assert space["negative_weight[view]"].log


def test_single_behavior_space_tunes_the_target_only(data):
    space = tuning.default_search_space("ehcf_sin", data)
    assert "negative_weight[buy]" in space
    assert not any(name.startswith("loss_coefficients") for name in space)
    assert "negative_weight[view]" not in space


def test_sampled_space_names_only_fields_of_the_model(data):
    space = tuning.default_search_space("neumf", data)
    assert {"learning_rate", "embedding_l2", "mf_dim", "mlp_dim", "hidden_layers"} <= set(space)
    assert {"num_negatives"} <= set(space)
    tuning.check_search_space("neumf", space)
    with pytest.raises(UserError, match="closed form"):
        tuning.default_search_space("popularity", data)


def test_parameters_become_a_valid_config():
    params = {
        "negative_weight[view]": 0.0123456789,
        "negative_weight[buy]": 0.2,
        "learning_rate": 0.0512345678,
        "embedding_dim": 16,
    }
    overrides = tuning.overrides_from_params(params)
    assert overrides["negative_weight"] == ["view:0.0123457", "buy:0.2"]
    assert overrides["learning_rate"] == 0.0512346
    config = registry.resolve_config("ehcf", "random", overrides)
    assert config.embedding_dim == 16
    assert tuning.trial_key(params) == tuning.trial_key(dict(reversed(params.items())))
    assert tuning.trial_key(params) != tuning.trial_key({**params, "embedding_dim": 32})


@pytest.mark.parametrize(
    "raw, message",
    [
        ({}, "non-empty"),
        ({"learning_rate": {"low": 0.1}}, "low and high"),
        ({"learning_rate": {"low": 0.2, "high": 0.1}}, "low <= high"),
        ({"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, "low > 0"),
        ({"keep_prob": {"choices": []}}, "non-empty list"),
    ],
)
def test_bad_search_spaces_are_refused(raw, message):
    with pytest.raises(UserError, match=message):
        tuning.parse_search_space(raw)


def test_search_space_of_another_model_is_refused():
    space = tuning.parse_search_space({"num_negatives": {"low": 1, "high": 4}})
    with pytest.raises(UserError, match="num_negatives not hyper-parameters of ehcf"):
        tuning.check_search_space("ehcf", space)


def test_config_file_round_trip_and_errors(tmp_path):
    path = str(tmp_path / "best.json")
    tuning.write_config_file(
        path, {"model": "bpr", "dataset": "beibei", "overrides": {"learning_rate": 0.01}}
    )
    overrides, dataset = tuning.read_config_file(path, "bpr")
    assert overrides == {"learning_rate": 0.01} and dataset == "beibei"
    with pytest.raises(UserError, match="configures --model=bpr"):
        tuning.read_config_file(path, "ehcf")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "bpr", "overrides": {"no_such_field": 1}}))
    with pytest.raises(UserError, match="no_such_field"):
        tuning.read_config_file(str(bad), "bpr")
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": "bpr",\n "overrides": }')
    with pytest.raises(UserError, match="broken.json:2"):
        tuning.read_config_file(str(broken), "bpr")


@pytest.mark.parametrize("model", ["mc_bpr", "mfpr", "nmtr"])
def test_multi_behavior_sampled_spaces_give_configs_the_model_builds_with(model, data):
    space = tuning.default_search_space(model, data)
    tuning.check_search_space(model, space)
    if model != "mfpr":
        assert any(p.behavior for p in space.values())  # level weights or λ are searched
    params = {
        name: p.choices[-1] if p.choices is not None else (p.low + p.high) / 2
        for name, p in space.items()
    }
    params = {
        name: round(value) if space[name].field in tuning.int_fields(model) else value
        for name, value in params.items()
    }
    config = registry.resolve_config(model, data.name, tuning.overrides_from_params(params))
    registry.get(model).build_task(data, config)
    assert registry.get(model).build(data, config).num_items == data.num_items
