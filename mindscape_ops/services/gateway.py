"""The gateway: nginx in front of the application, with TLS (or a trusted TLS proxy), security
headers, CORS, rate limits and a JSON audit log, from `security:`."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from mindscape_ops.services import gateway_routes
from mindscape_ops.services.contract import HTTP_TIMEOUT_S, Address, Failed, Gate, GateContext, HttpProbe, Skipped
from mindscape_ops.services.definition import Artifact, KubeShape, Problem, ServiceDef, deploy, url_port
from mindscape_ops.services.spec import HOST_NAME, Container, Mount
from mindscape_ops.settings.base import HttpUrl, ImageRef, PortSpec, Service, check_pattern

if TYPE_CHECKING:
    import http.client
    from collections.abc import Mapping

    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project

ServerName = Annotated[str, check_pattern(re.compile(r"^[A-Za-z0-9_.*-]+$"), "a server name", "api.example.com")]


class Gateway(Service):
    """nginx in front of the application: security headers, CORS, rate limits, audit log."""

    image: ImageRef = "nginx:1.27"
    port: PortSpec = 8080
    upstream: HttpUrl = "http://host.docker.internal:8000"
    server_name: ServerName = "_"
    # who may pass, by path prefix (services/gateway_routes.py); a path not listed: auth none
    routes: list[gateway_routes.Route] = []

    @property
    def upstream_host(self) -> str:
        """The upstream's host: a name (lower case) or an address (without brackets)."""
        return urlsplit(self.upstream).hostname or ""


# Where the files of `security.tls` are mounted (the nginx template names these paths).
TLS_IN_CONTAINER = {
    "certificate": "/etc/nginx/tls/certificate.pem",
    "key": "/etc/nginx/tls/key.pem",
    "upstream_ca": "/etc/nginx/tls/upstream-ca.pem",
}


def tls_mounts(platform: Platform) -> tuple[Mount, ...]:
    """The certificate, key and upstream CA named in `security.tls`, read-only: a relative path
    is the project's, an absolute one the host's."""
    tls = platform.security.tls
    mounts = []
    for key, target in TLS_IN_CONTAINER.items():
        source = getattr(tls, key)
        if source:
            mounts.append(Mount(source, target, host=source.startswith("/")))
    return tuple(mounts)


# Where the gateway reads the upstream's address from /etc/hosts (templates/gateway/upstream.js.j2).
UPSTREAM_JS_IN_CONTAINER = "/etc/nginx/mindscape/upstream.js"


def upstream_from_hosts_file(platform: Platform) -> bool:
    """On the Docker network, the upstream is the name Docker writes into /etc/hosts (HOST_NAME):
    the gateway reads it there per request (render/site.py: Site.lookup)."""
    return platform.services.gateway.upstream_host == HOST_NAME


REDIRECT_PORT = 8081  # plain HTTP, redirected to HTTPS (security.tls.redirect_port)


def container(platform: Platform) -> Container:
    redirect = platform.security.tls.redirect_port
    return Container(
        container_port=8080,
        extra_ports={REDIRECT_PORT: redirect} if redirect else {},
        command=("nginx", "-g", "daemon off;"),
        mounts=(
            Mount(f"{platform.paths.deploy}/gateway/nginx.conf", "/etc/nginx/nginx.conf"),
            *tls_mounts(platform),
            *gateway_routes.mounts(platform),
            *(
                (Mount(f"{platform.paths.deploy}/gateway/upstream.js", UPSTREAM_JS_IN_CONTAINER, docker_only=True),)
                if upstream_from_hosts_file(platform)
                else ()
            ),
        ),
        healthcheck=("CMD-SHELL", "curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1"),
        reach_host=True,  # the application runs on the host
    )


def tls_files_exist(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """Before `up`: each file of `security.tls` is there (Docker would mount a missing one as
    an empty folder, and nginx would stop on it)."""
    from mindscape_ops.errors import UsageError

    tls = project.platform.security.tls
    for key in TLS_IN_CONTAINER:
        source = getattr(tls, key)
        if source and not (project.root / source).is_file():  # an absolute source stays absolute
            raise UsageError(
                f"security.tls.{key}: {source} is not a file",
                "point it at a PEM file (relative to the folder holding platform.yaml, or absolute)",
            )
    return []


def problems(platform: Platform) -> list[Problem]:
    tls, gateway = platform.security.tls, platform.services.gateway
    found: list[Problem] = gateway_routes.problems(platform)
    if tls.upstream_ca and not gateway.upstream.startswith("https://"):
        found.append(
            (("security", "tls", "upstream_ca"), "is used only with an https upstream (services.gateway.upstream)")
        )
    if tls.redirect_port and not isinstance(gateway.port, int):
        found.append(
            (("services", "gateway", "port"), "a number with security.tls.redirect_port: the redirect names it")
        )
    taken = {s.port: f"services.{n}.port" for n, s in platform.services.enabled().items() if isinstance(s.port, int)}
    if tls.redirect_port in taken:
        found.append(
            (
                ("security", "tls", "redirect_port"),
                f"port {tls.redirect_port} is already used by {taken[tls.redirect_port]}",
            )
        )
    if platform.environment == "production" and tls.mode == "plain" and not gateway.bind.startswith("127."):
        found.append(
            (
                ("security", "tls", "mode"),
                f"plain HTTP on {gateway.bind} in production: set mode terminate (certificate, key) or proxy "
                "(trusted_proxies), or bind the gateway to 127.0.0.1",
            )
        )
    return found


# -- its `mindscape check` gates (security group), against the live gateway -------------------------

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


def connection(ctx: GateContext, address: Address | None = None) -> http.client.HTTPConnection:
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


def request(ctx: GateContext, method: str, path: str, headers: dict[str, str] | None = None):
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


def headers(ctx: GateContext) -> str:
    wanted = expected_headers(ctx.platform.security)
    _, got = request(ctx, "GET", "/healthz")
    problems = header_problems(wanted, got)
    if problems:
        raise Failed("GET /healthz: " + "; ".join(problems))
    return f"{len(wanted)} security headers present with their configured values"


def healthz(ctx: GateContext) -> str:
    status, _ = request(ctx, "GET", "/healthz")
    if status != 200:
        raise Failed(f"GET /healthz answered {status}")
    return "GET /healthz answered 200"


def cors(ctx: GateContext) -> str:
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


def rate_limit(ctx: GateContext) -> str:
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


def burst(ctx: GateContext, count: int, limit_status: int) -> tuple[int, int]:
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
GATES = (
    Gate("security.headers", headers, REMEDY_GATEWAY),
    Gate("security.cors", cors, REMEDY_GATEWAY),
    Gate("security.rate_limit", rate_limit, REMEDY_GATEWAY),
    Gate("security.healthz", healthz, "`mindscape logs gateway`; `mindscape up gateway` restarts it"),
)

SERVICE = ServiceDef(
    name="gateway",
    summary="nginx in front of the application: headers, CORS, rate limits, audit log",
    settings=Gateway,
    container=container,
    probe=HttpProbe("/healthz"),
    artifacts=(
        Artifact("gateway/nginx.conf.j2", deploy("gateway/nginx.conf")),
        Artifact("gateway/auth.js.j2", deploy("gateway/auth.js"), when=gateway_routes.protected),
        Artifact("gateway/upstream.js.j2", deploy("gateway/upstream.js"), when=upstream_from_hosts_file),
    ),
    gates=GATES,  # its `mindscape check` gates
    problems=problems,
    prepare=tls_files_exist,
    kubernetes=KubeShape(
        run_as=101,
        writable=("/tmp", "/var/cache/nginx"),
        public=True,
        talks_to=gateway_routes.identity_edges,
        talks_to_ports=gateway_routes.identity_admin_edges,
        outside_ports=lambda p: {url_port(p.services.gateway.upstream)},  # the application
        outside_hosts=lambda p: [("services.gateway.upstream", urlsplit(p.services.gateway.upstream).hostname)],
    ),
)
