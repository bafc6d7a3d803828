"""The hand-encoded PredictionLog warm-up records parse as TF Serving's protos."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorflow.core.framework import tensor_pb2

from mbrec_tf.models import popularity
from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving import warmup

_FIELD = descriptor_pb2.FieldDescriptorProto


def _message_classes() -> dict[str, type]:
    """PredictionLog & co. rebuilt from TF Serving's field numbers, in a private pool.

    The map value is declared as `bytes` (same wire type as an embedded TensorProto) and
    parsed with TensorFlow's TensorProto afterwards.
    """
    file = descriptor_pb2.FileDescriptorProto(name="warmup_check.proto", package="check")

    def message(name: str, fields: list[tuple[str, int, int, str | None, bool]]):
        proto = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            field = proto.field.add(
                name=field_name,
                number=number,
                type=kind,
                label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = type_name
        return proto

    string, bytes_, msg = _FIELD.TYPE_STRING, _FIELD.TYPE_BYTES, _FIELD.TYPE_MESSAGE
    message(
        "ModelSpec", [("name", 1, string, None, False), ("signature_name", 3, string, None, False)]
    )
    request = message(
        "PredictRequest",
        [
            ("model_spec", 1, msg, ".check.ModelSpec", False),
            ("inputs", 2, msg, ".check.PredictRequest.InputsEntry", True),
        ],
    )
    entry = request.nested_type.add(name="InputsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=string, label=_FIELD.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=bytes_, label=_FIELD.LABEL_OPTIONAL)
    message("PredictLog", [("request", 1, msg, ".check.PredictRequest", False)])
    message("PredictionLog", [("predict_log", 6, msg, ".check.PredictLog", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"check.{name}"))
        for name in ("PredictionLog",)
    }


def _decode(record: bytes) -> tuple[str, str, dict[str, np.ndarray]]:
    log = _message_classes()["PredictionLog"].FromString(record)
    request = log.predict_log.request
    inputs = {
        key: tf.make_ndarray(tensor_pb2.TensorProto.FromString(value))
        for key, value in request.inputs.items()
    }
    return request.model_spec.name, request.model_spec.signature_name, inputs


def test_varints_match_the_protobuf_spec():
    assert warmup._varint(1) == b"\x01"
    assert warmup._varint(150) == b"\x96\x01"
    assert warmup._varint(300) == b"\xac\x02"


def test_prediction_log_round_trip():
    inputs = {"user": np.array([b"u1", b"u2"], dtype=object), "k": np.int32(7)}
    record = warmup.encode_prediction_log(warmup.encode_predict_request("m", "top_k", inputs))
    name, signature, decoded = _decode(record)
    assert (name, signature) == ("m", "top_k")
    assert decoded["user"].tolist() == [b"u1", b"u2"]
    assert decoded["k"] == 7 and decoded["k"].dtype == np.int32


def test_real_tensorflow_serving_protos_parse_it():
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    inputs = {"user": np.array([5, 6], dtype=np.int64)}
    record = warmup.encode_prediction_log(
        warmup.encode_predict_request("", "serving_default", inputs)
    )
    log = prediction_log_pb2.PredictionLog.FromString(record)
    assert log.WhichOneof("log_type") == "predict_log"
    request = log.predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(request.inputs["user"]).tolist() == [5, 6]


def test_export_writes_replayable_warmup_requests(tmp_path):
    from mbrec_tf.data.generated import random_data

    data = random_data(num_users=10, num_items=15)
    path = export_lib.export_model(
        popularity.Popularity(data.item_popularity(), data.num_users),
        data,
        str(tmp_path),
        default_k=3,
    )
    records = [
        r.numpy() for r in tf.data.TFRecordDataset(f"{path}/assets.extra/{warmup.WARMUP_FILE}")
    ]
    loaded = tf.saved_model.load(path)
    signatures = []
    for record in records:  # replay them as TF Serving does on load
        _, signature, inputs = _decode(record)
        signatures.append(signature)
        loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    assert signatures == ["serving_default", "top_k", "score", "user_embedding"]
