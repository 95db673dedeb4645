"""The endpoint address policy on its own: which addresses are refused, and the allow-list."""

import ipaddress

import pytest

from gateway.dispatch.policy import EndpointPolicy, endpoint_policy, parse_networks

NOTHING_ALLOWED = EndpointPolicy(allowed=(), own=frozenset())


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("100.64.0.1", "a reserved address"),
        ("240.0.0.1", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.1.2.3", "a private address"),
        ("64:ff9b::a9fe:a9fe", "a link-local address"),
    ],
)
def test_addresses_inside_the_organizers_reach_are_refused(address: str, reason: str) -> None:
    assert NOTHING_ALLOWED.refusal(address) == reason
    assert not NOTHING_ALLOWED.allows(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert NOTHING_ALLOWED.refusal(address) is None
    assert NOTHING_ALLOWED.allows(address)


def test_the_allow_list_opens_exactly_its_networks() -> None:
    policy = EndpointPolicy(allowed=parse_networks("127.0.0.0/8, 10.1.0.0/16"), own=frozenset())

    assert policy.allows("127.0.0.1")
    assert policy.allows("::ffff:127.0.0.1")
    assert policy.allows("10.1.200.3")
    assert not policy.allows("10.2.0.1")
    assert not policy.allows("::1")
    assert not policy.allows("169.254.169.254")


def test_the_hubs_own_addresses_are_refused_unless_allowed() -> None:
    own = ipaddress.ip_address("93.184.216.34")
    assert EndpointPolicy(allowed=(), own=frozenset({own})).refusal(str(own)) == (
        "one of the hub's own addresses"
    )
    allowed = EndpointPolicy(allowed=parse_networks("93.184.216.34/32"), own=frozenset({own}))
    assert allowed.allows(str(own))


def test_the_process_policy_knows_this_hosts_interfaces() -> None:
    policy = endpoint_policy("")

    assert ipaddress.ip_address("127.0.0.1") in policy.own
    assert not policy.allows("127.0.0.1")


def test_a_name_is_not_an_address() -> None:
    assert not NOTHING_ALLOWED.allows("localhost")
    with pytest.raises(ValueError):
        NOTHING_ALLOWED.refusal("localhost")


@pytest.mark.parametrize("text", ["10.0.0/8x", "localhost", "10.0.0.0/33"])
def test_a_bad_allow_list_names_its_entry(text: str) -> None:
    with pytest.raises(ValueError, match="RECOGHUB_ENDPOINT_ALLOW"):
        parse_networks(text)


def test_an_empty_allow_list_allows_nothing_extra() -> None:
    assert parse_networks("") == ()
    assert parse_networks(" , ") == ()
