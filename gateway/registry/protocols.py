"""A service's `protocol` and `protocol_options` as the API takes them (SPEC §11).

Each option is checked on its own by pydantic; `protocol_problem` checks them together
with the protocol (a model for oip-v2 and torchserve, labels for probabilities, no
option a protocol would ignore), for create (a 422 from the schema) and for PATCH (the
merged result, a 422 from the service).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.dispatch.protocols.options import (
    ALIASES,
    CLASSIFICATION,
    OIP_V2,
    PROBABILITIES,
    PROTOCOLS,
    RECOGHUB_V1,
    TORCHSERVE,
)

ProtocolName = Literal["recoghub-v1", "v1", "oip-v2", "torchserve"]
# Names go into URL paths (/v2/models/{model}/infer): no '/', '?', '#', '%' or spaces.
ModelName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=200)
]
TensorName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_LABELS = 100_000
MAX_TOP_K = 1000

# Which options each protocol reads; any other is refused rather than silently ignored.
_USED: dict[str, frozenset[str]] = {
    RECOGHUB_V1: frozenset(),
    OIP_V2: frozenset({"model", "input", "output", "output_format", "labels", "top_k"}),
    TORCHSERVE: frozenset({"model", "top_k"}),
}


class ProtocolOptionsIn(BaseModel):
    """`protocol_options`; what is left out takes the protocol's default."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName | None = Field(
        default=None, description="The served model's name (oip-v2 and torchserve)."
    )
    input: TensorName | None = Field(
        default=None, description='oip-v2: the input tensor the image goes in (default "image").'
    )
    output: TensorName | None = Field(
        default=None, description="oip-v2: the output tensor holding the answer."
    )
    output_format: Literal["classification", "result_string", "probabilities"] | None = Field(
        default=None, description="oip-v2: how the output reads (default classification)."
    )
    labels: Annotated[list[Label], Field(min_length=1, max_length=MAX_LABELS)] | None = Field(
        default=None, description="oip-v2: the class names, by index."
    )
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] | None = Field(
        default=None, description="How many best tags to keep (default 5)."
    )

    def stored(self) -> dict[str, Any] | None:
        """The options as kept in the database: only those given; None for none."""
        return self.model_dump(exclude_none=True) or None


def normalized_protocol(name: str) -> str:
    return ALIASES.get(name, name)


def protocol_problem(protocol: str, options: ProtocolOptionsIn | None) -> str | None:
    """What is missing or wrong in `options` for `protocol`, or None when they fit."""
    protocol = normalized_protocol(protocol)
    if protocol not in PROTOCOLS:
        return f"protocol {protocol!r} is unknown; use one of {', '.join(PROTOCOLS)}"
    given = set(options.model_dump(exclude_none=True)) if options is not None else set()
    unused = sorted(given - _USED[protocol])
    if unused:
        return (
            f"protocol {protocol} does not use protocol_options "
            + ", ".join(unused)
            + "; leave them out"
        )
    if protocol == RECOGHUB_V1:
        return None
    if options is None or options.model is None:
        return (
            f"protocol_options.model is missing: protocol {protocol} needs the name the "
            "model is served under"
        )
    if (options.output_format or CLASSIFICATION) == PROBABILITIES and not options.labels:
        return (
            "protocol_options.labels is missing: output_format probabilities needs the class "
            "names, in the order of the model's output vector"
        )
    return None
