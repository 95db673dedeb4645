"""How the hub talks to a service's endpoints: one adapter per protocol (SPEC §11), each
in a module of its own (`recoghub_v1`, `oip_v2`, `torchserve`), and here the one
function that picks a service's adapter."""

import json
from collections.abc import Mapping
from typing import Any

from gateway.dispatch.protocols.oip_v2 import OipV2Adapter
from gateway.dispatch.protocols.options import (
    OIP_V2,
    PROTOCOLS,
    RECOGHUB_V1,
    TORCHSERVE,
    ProtocolOptions,
    normalize_protocol,
)
from gateway.dispatch.protocols.recoghub_v1 import RECOGHUB, Adapter
from gateway.dispatch.protocols.torchserve import TorchServeAdapter

_ADAPTERS: dict[tuple[str, str], Adapter] = {}


def adapter_for(protocol: str, options: Mapping[str, Any] | None) -> Adapter:
    """The adapter of a service's `protocol` and stored `protocol_options`.

    Adapters are kept per distinct (protocol, options), so that each keeps its built
    URLs across the engine's surveys and the relay's cache misses. Raises ValueError for
    an unknown protocol or options the registry would have refused.
    """
    protocol = normalize_protocol(protocol)
    if protocol == RECOGHUB_V1:
        return RECOGHUB
    key = (protocol, json.dumps(options or {}, sort_keys=True))
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        if protocol == OIP_V2:
            adapter = OipV2Adapter(ProtocolOptions.of(options))
        elif protocol == TORCHSERVE:
            adapter = TorchServeAdapter(ProtocolOptions.of(options))
        else:
            raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
        if len(_ADAPTERS) >= 1024:
            _ADAPTERS.clear()
        _ADAPTERS[key] = adapter
    return adapter
