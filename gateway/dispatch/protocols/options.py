"""The protocols' names and a service's `protocol_options` (SPEC §11), as the registry
checks them and the adapters read them."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RECOGHUB_V1 = "recoghub-v1"
OIP_V2 = "oip-v2"
TORCHSERVE = "torchserve"
PROTOCOLS = (RECOGHUB_V1, OIP_V2, TORCHSERVE)
# Services registered before SPEC §11 say "v1".
ALIASES = {"v1": RECOGHUB_V1}

CLASSIFICATION = "classification"
RESULT_STRING = "result_string"
PROBABILITIES = "probabilities"
OUTPUT_FORMATS = (CLASSIFICATION, RESULT_STRING, PROBABILITIES)

DEFAULT_INPUT = "image"
DEFAULT_TOP_K = 5


def normalize_protocol(name: str) -> str:
    return ALIASES.get(name, name)


@dataclass(frozen=True, slots=True)
class ProtocolOptions:
    """A service's `protocol_options`, as stored (checked by the registry)."""

    model: str | None = None
    input: str = DEFAULT_INPUT
    output: str | None = None
    output_format: str = CLASSIFICATION
    labels: tuple[str, ...] | None = None
    top_k: int = DEFAULT_TOP_K

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None) -> "ProtocolOptions":
        stored = stored or {}
        labels = stored.get("labels")
        return cls(
            model=stored.get("model"),
            input=stored.get("input") or DEFAULT_INPUT,
            output=stored.get("output"),
            output_format=stored.get("output_format") or CLASSIFICATION,
            labels=tuple(labels) if labels is not None else None,
            top_k=int(stored.get("top_k") or DEFAULT_TOP_K),
        )
