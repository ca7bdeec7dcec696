"""security gates, against the live gateway (headers with their values, CORS, the rate limit,
/healthz: attached to the gateway's ServiceDef, so they exist when it is enabled) and on disk
(secrets.env private, no secret value in a rendered or tracked file)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mindscape_ops.check.context import HTTP_TIMEOUT_S, CheckContext
from mindscape_ops.check.model import Failed, Gate, Skipped
from mindscape_ops.check.secrets import secrets_in_files, secrets_mode

if TYPE_CHECKING:
    import http.client

    from mindscape_ops.provision.endpoints import Address

OTHER_ORIGIN = "https://not-an-allowed-origin.invalid"


def expected_headers(security) -> dict[str, str]:
    """Each security header the gateway must send, with its value (as the nginx template says),
    to a client that reaches it directly: HSTS only when the gateway itself serves TLS (behind a
    TLS proxy, only the proxy's clients get it)."""
    h = security.headers
    wanted = {}
    if h.hsts.enabled and security.tls.mode == "terminate":
        value = f"max-age={int(h.hsts.max_age.seconds)}"
        value += "; includeSubDomains" if h.hsts.include_subdomains else ""
        value += "; preload" if h.hsts.preload else ""
        wanted["Strict-Transport-Security"] = value
    wanted.update(
        {
            "Content-Security-Policy": h.content_security_policy,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": h.frame_options,
            "Referrer-Policy": h.referrer_policy,
            "Permissions-Policy": h.permissions_policy,
            "Cross-Origin-Opener-Policy": h.cross_origin_opener_policy,
            "Cross-Origin-Resource-Policy": h.cross_origin_resource_policy,
            "Cross-Origin-Embedder-Policy": h.cross_origin_embedder_policy,
        }
    )
    return wanted


def header_problems(wanted: dict[str, str], got: http.client.HTTPMessage | dict[str, str]) -> list[str]:
    """Pure: which wanted headers are missing or carry another value."""
    found = {k.lower(): v for k, v in got.items()}
    problems = []
    for name, value in wanted.items():
        seen = found.get(name.lower())
        if seen is None:
            problems.append(f"{name} missing")
        elif seen != value:
            problems.append(f"{name} is {seen!r}, expected {value!r}")
    return problems


def connection(ctx: CheckContext, address: Address | None = None) -> http.client.HTTPConnection:
    """A connection to the gateway's published port: HTTPS when it serves TLS. Its certificate
    is for the public name, not this address: the gates check the gateway, not the certificate."""
    import http.client
    import ssl

    address = address or ctx.address("gateway")
    if ctx.platform.security.tls.mode != "terminate":
        return http.client.HTTPConnection(address.host, address.port, timeout=HTTP_TIMEOUT_S)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(address.host, address.port, timeout=HTTP_TIMEOUT_S, context=context)


def request(ctx: CheckContext, method: str, path: str, headers: dict[str, str] | None = None):
    """One request to the gateway on its published port: (status, headers)."""
    import http.client

    conn = connection(ctx)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        response.read(1 << 16)
        return response.status, response.headers
    except (OSError, http.client.HTTPException) as exc:
        raise Failed(f"gateway: {method} {path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()


def headers(ctx: CheckContext) -> str:
    wanted = expected_headers(ctx.platform.security)
    _, got = request(ctx, "GET", "/healthz")
    problems = header_problems(wanted, got)
    if problems:
        raise Failed("GET /healthz: " + "; ".join(problems))
    return f"{len(wanted)} security headers present with their configured values"


def healthz(ctx: CheckContext) -> str:
    status, _ = request(ctx, "GET", "/healthz")
    if status != 200:
        raise Failed(f"GET /healthz answered {status}")
    return "GET /healthz answered 200"


def cors(ctx: CheckContext) -> str:
    allowed = ctx.platform.security.cors.allowed_origins
    problems = []
    if allowed:
        preflight = {"Origin": allowed[0], "Access-Control-Request-Method": "GET"}
        status, got = request(ctx, "OPTIONS", "/", preflight)
        echoed = got.get("Access-Control-Allow-Origin")
        if echoed != allowed[0]:
            problems.append(f"a preflight from {allowed[0]} got Access-Control-Allow-Origin {echoed!r} ({status})")
    _, got = request(ctx, "OPTIONS", "/", {"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "GET"})
    if got.get("Access-Control-Allow-Origin"):
        problems.append(
            f"a preflight from another origin got Access-Control-Allow-Origin {got['Access-Control-Allow-Origin']!r}"
        )
    if problems:
        raise Failed("; ".join(problems))
    if not allowed:
        return "no allowed origins configured; another origin gets no CORS headers"
    return f"{allowed[0]} is echoed on a preflight; another origin is not"


def rate_limit(ctx: CheckContext) -> str:
    rate = ctx.platform.security.rate_limit
    if not rate.enabled:
        raise Skipped("security.rate_limit.enabled is false")
    count = rate.requests_per_second + rate.burst + 10  # past the burst, within its first second
    if count > MAX_BURST:
        raise Skipped(f"{rate.requests_per_second}/s with burst {rate.burst} takes over {MAX_BURST} requests to prove")
    limited, sent = burst(ctx, count, rate.status)
    if not limited:
        raise Failed(
            f"{sent} requests at once: none answered {rate.status} "
            f"(limit {rate.requests_per_second}/s, burst {rate.burst})"
        )
    window = 1.5 / rate.requests_per_second + 0.05
    for _ in range(3):  # another gate's request may take the one slot that came free
        time.sleep(window)
        status, _ = request(ctx, "GET", "/")
        if status != rate.status:
            return (
                f"{limited} of {sent} burst requests answered {rate.status}; "
                f"after {window:.2f}s GET / answered {status}"
            )
    raise Failed(f"{limited} of {sent} burst requests answered {rate.status}, and requests after the window still do")


MAX_BURST = 1000  # requests one check may send to prove the limit
MAX_BURST_CONNECTIONS = 64


def burst(ctx: CheckContext, count: int, limit_status: int) -> tuple[int, int]:
    """`count` GET / at once, each on its own connection, so that a slow application behind the
    gateway cannot pace them under the limit: (how many got `limit_status`, how many answered).
    A request that gets no answer in time was let through (the limit answers at once)."""
    from concurrent.futures import ThreadPoolExecutor

    address = ctx.address("gateway")

    def one(_: int) -> int | None:
        import http.client

        conn = connection(ctx, address)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read(1 << 16)
            return response.status
        except TimeoutError:
            return None
        except (OSError, http.client.HTTPException) as exc:
            raise Failed(f"gateway: GET / during the burst: {exc or type(exc).__name__}") from None
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=min(count, MAX_BURST_CONNECTIONS)) as pool:
        statuses = list(pool.map(one, range(count)))
    return sum(1 for status in statuses if status == limit_status), count


REMEDY_GATEWAY = (
    "the gateway does not serve deploy/gateway/nginx.conf as rendered: `mindscape render --check` and "
    "`mindscape up gateway`; `mindscape logs gateway` shows nginx's complaints"
)
GATEWAY_GATES = (
    Gate("security.headers", headers, REMEDY_GATEWAY),
    Gate("security.cors", cors, REMEDY_GATEWAY),
    Gate("security.rate_limit", rate_limit, REMEDY_GATEWAY),
    Gate("security.healthz", healthz, "`mindscape logs gateway`; `mindscape up gateway` restarts it"),
)
GATES = (
    Gate("security.secrets_mode", secrets_mode, "chmod 600 .mindscape/secrets.env"),
    Gate(
        "security.secrets_in_files",
        secrets_in_files,
        "remove the value from each file named (and from git history), then rotate that password: "
        "a committed secret is a leaked one",
    ),
)
