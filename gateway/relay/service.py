"""Relay one recognition request to a service, and check a service's instances.

No HTTP routing here: the routes read the request and shape the answer; these functions
find the target, send, and judge what came back.

Speed (SPEC §8: the relay adds at most 1.5 ms at p50). The database work of a relayed
request (who is calling, which service, may they) is done in one threadpool call
(`resolve_target`) and its result kept in a tiny per-process cache (`TargetCache`) for
`TARGET_TTL_S` seconds: a team debugging or benchmarking sends the same (key, service)
pair again and again, and a hit costs no query and no thread hop, where a miss costs
three ORM queries plus the hop (about 1.4 ms on SQLite on the 2-core reference
machine: the whole budget); requests that miss together share one look-up. Only
successes are cached, so a new service or key works at once. A change made through the
registry's routes (endpoints, disabling, deleting, a rotated secret) empties the cache
of the process that made it (`forget_targets`), so that process relays by the new rules
from the next request on; other hub processes see it within `TARGET_TTL_S` seconds.

The image check remembers the images it accepted (`CHECKED_IMAGES`, by SHA-256), so a
picture sent again is not opened by Pillow again.
"""

import asyncio
import dataclasses
import functools
import io

from PIL import Image
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from gateway.auth import authenticate, hash_token
from gateway.dialout.connections import is_dialout
from gateway.dispatch.answers import Answer, Target
from gateway.dispatch.dispatcher import Dispatcher
from gateway.errors import (
    Conflict,
    PayloadTooLarge,
    RecognizerConnectError,
    RecognizerFailed,
    UnsupportedMedia,
)
from gateway.images import CheckedImage, ImageTooLarge, NotAnImage, check_image
from gateway.registry.schemas import MAX_ENDPOINTS
from gateway.registry.service import authorize_service, get_service, service_target
from gateway.relay.image_verdicts import CheckedImages
from gateway.relay.schemas import CheckRead, InstanceCheckRead, TagRead
from gateway.relay.target_cache import TargetCache
from gateway.state import HubState

# A check costs a ping and a probe image per instance: as many connections as a service
# may have endpoints (SPEC §9), whatever number of connections it opened.
MAX_CHECKED_CONNECTIONS = MAX_ENDPOINTS


def target_cache(state: HubState) -> TargetCache:
    """The hub's cache of relay targets (one per hub app)."""
    if state.relay_targets is None:
        state.relay_targets = TargetCache()
    return state.relay_targets


def forget_targets(state: HubState) -> None:
    """Drop every cached relay target; for the registry to call after changing a service."""
    target_cache(state).clear()


def resolve_target(
    sessions: sessionmaker[Session],
    *,
    token: str | None,
    guid: str,
    admin_token: str | None,
    open_to_all_providers: bool,
    require_usable: bool,
) -> Target:
    """Authenticate, load the service and authorize, in one session (run it in a thread).

    The organizer and the owning provider may always; any provider too when
    `open_to_all_providers`. With `require_usable` a disabled service is refused
    (whether it has instances is the caller's to check: `require_instances`). Raises
    Unauthorized, NotFound, WrongGuidKind, Forbidden, or Conflict (`service_disabled`).
    """
    with sessions() as session:
        principal = authenticate(session, token, configured_admin=admin_token)
        principal.require_caller()
        service = get_service(session, guid=guid)
        if not (open_to_all_providers and principal.provider_id is not None):
            authorize_service(principal, service)
        target = service_target(service)
        enabled = service.enabled
    if require_usable and not enabled:
        raise Conflict(
            f"service {target.service_guid} is disabled; the organizer can enable it "
            '(PATCH /api/v1/services/{guid} {"enabled": true})',
            code="service_disabled",
        )
    return target


def require_instances(dispatcher: Dispatcher, target: Target) -> None:
    """Refuse a relay to a service with no endpoint and no recognizer connected out to
    this process: Conflict (code `no_instances`)."""
    if not dispatcher.instances(target):
        raise Conflict(
            f"service {target.service_guid} has no endpoint instances and no recognizer "
            "connected out to this hub process; add endpoints or start one with --connect",
            code="no_instances",
        )


async def relay_target(
    state: HubState, *, token: str, guid: str, digest: str | None = None
) -> Target:
    """The target of a relayed request, from the cache or from the database (`digest`:
    the token's `hash_token`, when the caller has it already)."""
    cache = target_cache(state)
    digest = digest or hash_token(token)
    target = cache.get(digest, guid)
    if target is None:
        target = await _looked_up(state, cache, token=token, guid=guid, digest=digest)
    require_instances(state.dispatcher, target)
    return target


async def _looked_up(
    state: HubState, cache: TargetCache, *, token: str, guid: str, digest: str
) -> Target:
    """One database look-up per (key, service) at a time. When a busy caller's entry
    expires, all its requests in flight miss at once: they share one look-up (one thread,
    one session) instead of starting one each. A look-up started before a `clear` is
    not joined after it."""
    generation = cache.generation
    key = (digest, guid, generation)
    lookup = cache.lookups.get(key)
    if lookup is None:
        settings = state.settings
        lookup = asyncio.ensure_future(
            run_in_threadpool(
                functools.partial(
                    resolve_target,
                    state.sessions,
                    token=token,
                    guid=guid,
                    admin_token=settings.admin_token,
                    open_to_all_providers=settings.relay_open_to_all_providers,
                    require_usable=True,
                )
            )
        )
        cache.lookups[key] = lookup

        def settled(done: asyncio.Future[Target]) -> None:
            cache.lookups.pop(key, None)
            if not done.cancelled() and done.exception() is None:
                cache.put(digest, guid, done.result(), generation=generation)

        lookup.add_done_callback(settled)
    # Shielded: a caller that goes away does not cancel the others' look-up.
    return await asyncio.shield(lookup)


async def check_target(state: HubState, *, token: str, guid: str) -> Target:
    """The target of a check: the organizer or the owning provider only, disabled or not.

    Never cached: someone checking has often just changed the endpoints.
    """
    settings = state.settings
    return await run_in_threadpool(
        functools.partial(
            resolve_target,
            state.sessions,
            token=token,
            guid=guid,
            admin_token=settings.admin_token,
            open_to_all_providers=False,
            require_usable=False,
        )
    )


# Images accepted before, by digest: one per hub process, shared by its apps (a verdict
# depends on the bytes alone; the limits are checked again on every hit).
CHECKED_IMAGES = CheckedImages()

# Pillow reads a small image in microseconds; a big PNG's CRC pass takes milliseconds,
# which must not stall the event loop for every other request in flight.
_INLINE_CHECK_BYTES = 256 * 1024


async def checked_image(
    data: bytes, *, digest: str, max_bytes: int, max_pixels: int
) -> CheckedImage:
    """`check_image` as API errors: 413 too large or a decompression bomb, 415 not an
    image. `digest` is the SHA-256 of `data` (hex): an image accepted before is not
    opened again (`CHECKED_IMAGES`)."""
    known = CHECKED_IMAGES.known(data, digest, max_bytes=max_bytes, max_pixels=max_pixels)
    if known is not None:
        return known
    try:
        if len(data) <= _INLINE_CHECK_BYTES:
            return CHECKED_IMAGES.check(data, digest, max_bytes=max_bytes, max_pixels=max_pixels)
        image = await run_in_threadpool(
            functools.partial(check_image, data, max_bytes=max_bytes, max_pixels=max_pixels)
        )
        CHECKED_IMAGES.remember(digest, image)
        return image
    except ImageTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except NotAnImage as exc:
        raise UnsupportedMedia(str(exc)) from None


async def relay(
    dispatcher: Dispatcher, target: Target, image: CheckedImage, *, digest: str
) -> Answer:
    """Send `image` (SHA-256 `digest`) with the hub's usual timeout and retries; an `ok`
    answer or RecognizerFailed (502 with code = outcome, 504 on timeout)."""
    answer = await dispatcher.recognize(
        target, image.data, content_type=image.content_type, digest=digest
    )
    if not answer.ok:
        error = answer.error or RecognizerConnectError(answer.detail or "no answer")
        raise RecognizerFailed(error, request_id=answer.request_id)
    return answer


@functools.cache
def probe_image() -> bytes:
    """The PNG that `check` sends: a small gradient, made once per process."""
    gradient = Image.linear_gradient("L").resize((64, 64))
    picture = Image.merge("RGB", (gradient, gradient.rotate(90), gradient.rotate(180)))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


async def check_instance(
    dispatcher: Dispatcher, target: Target, instance: str, *, timeout_s: float
) -> InstanceCheckRead:
    """Ping `instance` the protocol's way, then send it the probe image once (no retry,
    no other instance)."""
    ping = await dispatcher.ping(instance, timeout_s=timeout_s, adapter=target.adapter)
    answer = await dispatcher.recognize(
        dataclasses.replace(target, instances=(instance,)),
        probe_image(),
        content_type="image/png",
        timeout_s=timeout_s,
        max_attempts=1,
    )
    problems = []
    if ping.detail:
        problems.append(f"ping: {ping.detail}")
    if not answer.ok and answer.detail:
        problems.append(f"recognize: {answer.detail}")
    return InstanceCheckRead(
        instance=instance,
        connected=is_dialout(instance),
        # An instance that refuses the hub's signature answers nothing the hub sends: it
        # is not up for the hub, whatever its /ping says.
        reachable=ping.reachable and answer.status != 401,
        ping_ms=ping.latency_ms,
        ping_outcome=ping.outcome.value,
        format_ok=answer.ok,
        outcome=answer.outcome.value,
        latency_ms=answer.latency_ms,
        status=answer.status,
        request_id=answer.request_id,
        tags=[TagRead.of(t) for t in answer.tags],
        raw=answer.raw,
        detail="; ".join(problems) or None,
    )


async def check_service(dispatcher: Dispatcher, target: Target, *, timeout_s: float) -> CheckRead:
    """Check every HTTP endpoint of `target` and at most `MAX_CHECKED_CONNECTIONS` of
    its dial-out connections (the oldest), concurrently; `ok` when all checked are
    reachable and answer the probe well (a service without instances is not ok)."""
    every = dispatcher.instances(target)
    connected = [x for x in every if is_dialout(x)][:MAX_CHECKED_CONNECTIONS]
    instances = await asyncio.gather(
        *(
            check_instance(dispatcher, target, instance, timeout_s=timeout_s)
            for instance in [*(x for x in every if not is_dialout(x)), *connected]
        )
    )
    return CheckRead(
        service_guid=target.service_guid,
        protocol=target.adapter.name,
        ok=bool(instances) and all(i.reachable and i.format_ok for i in instances),
        instances=list(instances),
    )
