"""Which of the model versions on disk to serve: TF Serving's `model_version_policy`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

_POLICY = re.compile(r"^(latest(?::(?P<num>\d{1,4}))?|all|specific:(?P<versions>[\d,]+))$")


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which of the versions on disk to serve: TF Serving's `model_version_policy`.

    `latest` (the newest one, or `latest:N` the N newest), `all`, or `specific:1,3`.
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """A policy from its flag text; ValueError with a one-line message otherwise."""
        match = _POLICY.match(text.strip())
        if not match:
            raise ValueError(
                f"--model_version_policy must be latest, latest:N, all or specific:V1,V2,..., "
                f"got {text!r}"
            )
        if text.startswith("latest"):
            num = int(match["num"]) if match["num"] else 1
            if num < 1:
                raise ValueError("--model_version_policy latest:N needs N >= 1")
            return cls("latest", num_versions=num)
        if text == "all":
            return cls("all")
        parts = [p for p in match["versions"].split(",") if p]
        if not parts or any(len(p) > 18 for p in parts):
            raise ValueError(f"--model_version_policy specific: bad version list in {text!r}")
        return cls("specific", versions=tuple(sorted({int(p) for p in parts})))

    def select(self, available: Sequence[int]) -> list[int]:
        """The versions to serve out of `available` (ascending)."""
        available = sorted(available)
        if self.kind == "latest":
            return available[-self.num_versions :]
        if self.kind == "all":
            return available
        wanted = set(self.versions)
        return [v for v in available if v in wanted]

    def __str__(self) -> str:
        if self.kind == "latest":
            return "latest" if self.num_versions == 1 else f"latest:{self.num_versions}"
        if self.kind == "all":
            return "all"
        return "specific:" + ",".join(map(str, self.versions))
