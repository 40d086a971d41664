"""Handshake strictness (issue 10, item 9): every refusal checked byte for byte.

RFC 6455 section 4.2.1 and our own docs: HTTP/1.1 only, exactly one ``Sec-WebSocket-Key``
that is 16 bytes in base64, version 13 (426 naming it otherwise), a request head of at most
16 KiB however it arrives (431), ``Host`` and ``Origin`` parsed strictly (a host, an optional
numeric port, nothing else) and compared case-insensitively, no folded headers, and nothing
sent after the request head before our answer. Each case sends raw bytes on a real loopback
socket and compares everything the server sends back until it closes the connection.
"""

from __future__ import annotations

import trio

from tests.test_server_helpers import KEY, round_trip, running, upgrade_request, wait_closed


def refusal(status: str, body: str, *, extra: str = "", cache: bool = False) -> bytes:
    """The exact response of a refusal: status line, fixed headers, a text body."""
    head = f"HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
    if cache:
        head += "Cache-Control: no-store\r\n"
    data = (body + "\n").encode()
    return head.encode() + f"Content-Length: {len(data)}\r\n\r\n".encode() + data


def bad_request(body: str) -> bytes:
    return refusal("400 Bad Request", f"Bad Request: {body}")


async def answer_to(port: int, *chunks: bytes) -> bytes:
    """Send ``chunks`` (one write each) on a new connection; all the server sends until it closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        for chunk in chunks:
            await stream.send_all(chunk)
        return await wait_closed(stream)


async def test_only_http_1_1_upgrades_are_accepted() -> None:
    with trio.fail_after(20):
        async with running() as info:
            request = upgrade_request(info.port)
            http10 = request.replace(b"HTTP/1.1", b"HTTP/1.0", 1)
            assert await answer_to(info.port, http10) == bad_request("the WebSocket handshake needs HTTP/1.1")
            http09 = b"GET /mcp\r\n\r\n"
            assert await answer_to(info.port, http09) == bad_request(
                "not a valid WebSocket upgrade request (Bad HTTP message)"
            )
            await round_trip(info.url)


async def test_sec_websocket_key_must_be_one_16_byte_base64_value() -> None:
    wrong_size = bad_request("Sec-WebSocket-Key must be 16 bytes in base64")
    with trio.fail_after(20):
        async with running() as info:
            request = upgrade_request(info.port)
            key = KEY.encode()
            for bad in (b"", b"c2hvcnQ=", b"not base64 at all!!!!!==", b"AAAAAAAAAAAAAAAAAAAAAAAA"):
                assert await answer_to(info.port, request.replace(key, bad)) == wrong_size, bad
            two = upgrade_request(info.port, headers=[("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")])
            assert await answer_to(info.port, two) == bad_request(
                "exactly one Sec-WebSocket-Key header is required"
            )
            same_twice = upgrade_request(info.port, headers=[("Sec-WebSocket-Key", KEY)])
            assert await answer_to(info.port, same_twice) == bad_request(
                "exactly one Sec-WebSocket-Key header is required"
            )


async def test_another_version_gets_426_naming_13() -> None:
    with trio.fail_after(20):
        async with running() as info:
            request = upgrade_request(info.port).replace(
                b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"
            )
            assert await answer_to(info.port, request) == refusal(
                "426 Upgrade Required",
                "Upgrade Required: WebSocket version 13",
                extra="Sec-WebSocket-Version: 13\r\n",
            )


async def test_a_request_head_over_16_kib_gets_431_however_it_arrives() -> None:
    too_large = refusal(
        "431 Request Header Fields Too Large",
        "Request Header Fields Too Large: the request head exceeds 16 KiB",
    )
    with trio.fail_after(20):
        async with running() as info:
            for pad in (17 * 1024, 63 * 1024):
                request = upgrade_request(info.port, headers=[("X-Pad", "a" * pad)])
                assert await answer_to(info.port, request) == too_large  # one read, up to 64 KiB
                # Many small reads: 17 pieces of 1,000 bytes pass 16 KiB with the head unfinished
                # (the server answers then, without waiting for the rest).
                pieces = [request[i : i + 1000] for i in range(0, 17_000, 1000)]
                assert await answer_to(info.port, *pieces) == too_large
            # Just under the limit is served.
            fits = upgrade_request(info.port, headers=[("X-Pad", "a" * (15 * 1024))])
            answer = await answer_to_first_line(info.port, fits)
            assert answer == b"HTTP/1.1 101 Switching Protocols"


async def answer_to_first_line(port: int, request: bytes) -> bytes:
    """The status line the server answers ``request`` with (the connection is then dropped)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        while b"\r\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk, "closed without an answer"
            data += chunk
        return data.split(b"\r\n", 1)[0]


async def test_host_names_compare_case_insensitively() -> None:
    with trio.fail_after(20):
        async with running() as info:
            for host in (f"LOCALHOST:{info.port}", f"LocalHost:{info.port}", "LOCALHOST"):
                request = upgrade_request(info.port, host=host, headers=[("Origin", "HTTP://LOCALHOST")])
                assert await answer_to_first_line(info.port, request) == b"HTTP/1.1 101 Switching Protocols"


async def test_host_and_origin_are_parsed_strictly() -> None:
    bad_host = refusal("421 Misdirected Request", "Misdirected Request: invalid Host header", cache=True)
    bad_origin = refusal("403 Forbidden", "Forbidden: invalid Origin header", cache=True)
    with trio.fail_after(20):
        async with running() as info:
            for host in ("127.0.0.1:80@evil.com", "127.0.0.1:evil.com", "127.0.0.1:1/x", "127.0.0.1 x"):
                request = upgrade_request(info.port, host=host)
                assert await answer_to(info.port, request) == bad_host, host
            for origin in ("http://127.0.0.1:1@evil.com", "http://127.0.0.1/path", "http://127.0.0.1:x"):
                request = upgrade_request(info.port, headers=[("Origin", origin)])
                assert await answer_to(info.port, request) == bad_origin, origin


async def test_folded_and_duplicate_host_headers_are_refused() -> None:
    with trio.fail_after(20):
        async with running() as info:
            host_line = f"Host: 127.0.0.1:{info.port}".encode()
            folded = upgrade_request(info.port).replace(host_line, host_line + b"\r\n evil.com")
            assert await answer_to(info.port, folded) == bad_request("folded header lines are not allowed")
            # h11 refuses a second Host before our own check runs: same status, its wording.
            for second in (f"127.0.0.1:{info.port}", "evil.com"):
                two = upgrade_request(info.port, headers=[("Host", second)])
                assert await answer_to(info.port, two) == bad_request(
                    "not a valid WebSocket upgrade request (Bad HTTP message)"
                )


async def test_data_sent_before_the_answer_is_refused() -> None:
    with trio.fail_after(20):
        async with running() as info:
            masked_empty_text = b"\x81\x80\x00\x00\x00\x00"
            request = upgrade_request(info.port) + masked_empty_text
            assert await answer_to(info.port, request) == bad_request(
                "data sent before the handshake was answered"
            )
            await round_trip(info.url)
