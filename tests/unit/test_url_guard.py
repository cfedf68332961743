"""The URL guard: https, a host name, and public addresses only — with a resolver that needs no DNS."""

from __future__ import annotations

import pytest

from src.domain.errors import PermanentError, ValidationError
from src.domain.sources import UNPRINTABLE
from src.infrastructure.inference.http import OutputDownloader
from src.infrastructure.net import (
    UnresolvableHost,
    UnsafeUrl,
    UrlPolicy,
    check_public_url,
    vet_url,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def resolving_to(*addresses: str) -> UrlPolicy:
    return UrlPolicy.build(resolver=lambda host, port: list(addresses))


def unresolvable(host: str, port: int) -> list[str]:
    raise UnresolvableHost(f"{host} could not be resolved")


@pytest.mark.parametrize("addresses", [(PUBLIC_V4,), (PUBLIC_V6,), (PUBLIC_V4, PUBLIC_V6)])
def test_an_https_url_whose_host_resolves_to_public_addresses_passes(addresses):
    check_public_url("source", "https://videos.example.com/a.mp4", policy=resolving_to(*addresses))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "0.0.0.0",
        "100.64.0.1", "100.127.255.254", "224.0.0.1", "240.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "2002:0a00:0001::1", "64:ff9b::a00:1",
    ],
)
def test_a_host_resolving_to_an_internal_address_is_refused(address):
    with pytest.raises(ValidationError) as caught:
        check_public_url("source", "https://videos.example.com/a.mp4", policy=resolving_to(address))
    assert caught.value.fields == {"source": ["videos.example.com resolves to an internal address, "
                                              "which is not allowed"]}


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    with pytest.raises(ValidationError):
        check_public_url("source", "https://mixed.example.com/", policy=resolving_to(PUBLIC_V4, "10.0.0.5"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://videos.example.com/a.mp4", "only https URLs are accepted"),
        ("ftp://videos.example.com/a.mp4", "only https URLs are accepted"),
        ("https:///a.mp4", "the URL has no host"),
        ("https://user:pw@videos.example.com/a.mp4", "URLs with credentials are not accepted"),
        ("https://93.184.215.14/a.mp4", "the URL must name a host, not an IP address"),
        ("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/a.mp4",
         "the URL must name a host, not an IP address"),
        ("https://2130706433/a.mp4", "the URL must name a host, not an IP address"),
        ("https://0x7f.1/a.mp4", "the URL must name a host, not an IP address"),
        ("https://videos.example.com:99999/a.mp4", "the URL has an invalid port"),
        ("https://videos.example.com:x/a.mp4", "the URL has an invalid port"),
        ("https://[::1/a.mp4", "not a valid URL (Invalid IPv6 URL)"),
        ("https://videos.example.com/a b.mp4", UNPRINTABLE),
        ("https://videos.exa\x00mple.com/a.mp4", UNPRINTABLE),
    ],
)
def test_a_malformed_or_non_https_url_is_refused_with_its_reason(url, reason):
    with pytest.raises(ValidationError) as caught:
        check_public_url("input_image", url, policy=resolving_to(PUBLIC_V4))
    assert caught.value.fields == {"input_image": [reason]}


def test_a_host_that_does_not_resolve_is_refused():
    with pytest.raises(ValidationError) as caught:
        check_public_url("source", "https://nowhere.invalid/a.mp4",
                         policy=UrlPolicy.build(resolver=unresolvable))
    assert "could not be resolved" in caught.value.fields["source"][0]


def test_the_default_policy_allows_neither_http_nor_private_networks():
    policy = UrlPolicy()
    assert policy.allow_http_hosts == frozenset()
    assert policy.allowed_private_networks == ()


def test_an_explicit_private_network_and_http_host_are_let_through_only_when_configured():
    policy = UrlPolicy.build(resolver=lambda host, port: ["127.0.0.1"], allow_http_hosts={"media.test"},
                             allowed_private_networks={"127.0.0.0/8"})
    vetted = vet_url("http://media.test:8080/clip.mp4?x=1", policy=policy)
    assert (vetted.scheme, vetted.host, vetted.port) == ("http", "media.test", 8080)
    assert vetted.target == "/clip.mp4?x=1"
    assert vetted.host_header == "media.test:8080"
    with pytest.raises(UnsafeUrl):
        vet_url("http://other.test/clip.mp4", policy=policy)


def test_the_vetted_url_carries_the_addresses_the_connection_must_use():
    vetted = vet_url("https://videos.example.com/a.mp4", policy=resolving_to(PUBLIC_V4, PUBLIC_V6))
    assert [str(a) for a in vetted.addresses] == [PUBLIC_V4, PUBLIC_V6]
    assert vetted.host_header == "videos.example.com"


@pytest.mark.parametrize("url", ["https://[::1/a.mp4", "https://exa\uff03mple.com/a.mp4", "https://a:99999/",
                                 "https://a\x00b.example.com/", "https://\udcff.example.com/"])
def test_the_worker_side_guard_reads_urls_urllib_refuses_as_unsafe_not_as_a_crash(url):
    with pytest.raises(UnsafeUrl):
        vet_url(url, policy=resolving_to(PUBLIC_V4))


@pytest.mark.parametrize("url", ["https://[::1/out.mp4", "https://exa\uff03mple.com/out.mp4"])
def test_a_provider_output_url_urllib_refuses_fails_the_job_for_good_not_the_worker(url, tmp_path):
    downloader = OutputDownloader(provider="runway", trusted_base_url="http://127.0.0.1:9", timeout_s=1)

    with pytest.raises(PermanentError, match="the output URL is not valid"):
        downloader.download(url, tmp_path / "out.mp4")
