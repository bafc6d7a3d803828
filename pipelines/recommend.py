r"""Prints a user's top-k recommendations from an exported model.

  python -m pipelines.recommend --export_dir=runs/popularity/movielens_100k/export --user=196
  python -m pipelines.recommend --export_dir=runs/ehcf/beibei/export/2 --user=1001 --k=20

--export_dir is a version folder or a base folder (its latest version is used). Items
already in the user's target training data are never recommended. Titles are shown where
the export has them (e.g. MovieLens).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
from absl import flags

from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving.versions import clean_tf_message
from pipelines import flags as common

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """One recommended item."""

    rank: int
    item_id: str | int
    score: float
    title: str | None


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """All flags of the recommend pipeline."""
    flags.DEFINE_string(
        "export_dir",
        None,
        "Exported model: a version folder or its base folder.",
        flag_values=flag_values,
    )
    flags.DEFINE_string("user", None, "Raw user id, as in the dataset.", flag_values=flag_values)
    flags.DEFINE_integer(
        "k",
        None,
        "How many items (default: the export's default_k).",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.mark_flags_as_required(["export_dir", "user"], flag_values=flag_values)


def recommend(export_dir: str, user: str, k: int | None = None) -> list[Recommendation]:
    """Top-k items for the raw id `user` (text; converted to the export's id type)."""
    path = export_lib.resolve_version_dir(export_dir)
    loaded = tf.saved_model.load(path)
    user_dtype = loaded.signatures["serving_default"].structured_input_signature[1]["user"].dtype
    if user_dtype == tf.string:
        users = tf.constant([user])
    else:
        try:
            users = tf.constant([int(user)], dtype=user_dtype)
        except ValueError:
            raise ValueError(f"user ids of this model are integers, got {user!r}") from None
    try:
        if k is None:
            outputs = loaded.signatures["serving_default"](user=users)
        else:
            outputs = loaded.signatures["top_k"](user=users, k=tf.constant(k, dtype=tf.int32))
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(clean_tf_message(error.message)) from None
    titles = export_lib.read_item_titles(path)
    items = outputs["item_ids"].numpy()[0]
    scores = outputs["scores"].numpy()[0]
    results = []
    for rank, (item, score) in enumerate(zip(items, scores, strict=True), start=1):
        item_id = item.decode("utf-8") if isinstance(item, bytes) else int(item)
        results.append(Recommendation(rank, item_id, float(score), titles.get(str(item_id))))
    return results


def format_table(user: str, recommendations: list[Recommendation]) -> str:
    """The recommendations as an aligned text table."""
    has_titles = any(r.title for r in recommendations)
    width = max([len("item")] + [len(str(r.item_id)) for r in recommendations])
    lines = [f"top {len(recommendations)} for user {user}:"]
    header = f"{'rank':>4}  {'item':<{width}}  {'score':>10}"
    lines.append(header + ("  title" if has_titles else ""))
    for r in recommendations:
        line = f"{r.rank:>4}  {str(r.item_id):<{width}}  {r.score:>10.4f}"
        lines.append(line + (f"  {r.title}" if has_titles and r.title else ""))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    try:
        recommendations = recommend(FLAGS.export_dir, FLAGS.user, FLAGS.k)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"recommend: {error}") from None
    print(format_table(FLAGS.user, recommendations))


if __name__ == "__main__":
    define_flags()
    common.run(main)
