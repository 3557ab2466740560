"""Who may call `/v1`: static bearer tokens, JWTs (HS256 secret or a JWKS URL), or anyone on loopback.

With neither tokens nor a JWT setting there is nothing to check, which is only safe when nobody else can
connect: `check_bind` refuses to serve such an intake on anything but a loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orca_core.settings import OrcaSettings
from orca_intake.errors import Forbidden, ServiceUnavailable, Unauthorized

PRINCIPAL_KEY = "orca_principal"  # where AuthenticateFirst leaves the caller in the request scope
JWKS_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
CLOCK_SKEW_SECONDS = 10

# Only documents the scheme in OpenAPI ("Authorize" button); `authenticate` reads the header itself.
bearer_scheme = HTTPBearer(auto_error=False, description="A token from ORCA_INTAKE_TOKENS, or a JWT.")


class UnsafeBind(ValueError):
    """Serving on a non-loopback address without any authentication configured."""


@dataclass(frozen=True)
class Principal:
    """Who made the request: `method` is "none" (loopback, no auth), "token" or "jwt"; `subject` is the JWT's
    `sub`, or for a static token a short digest of it (never the token itself)."""

    method: str
    subject: str | None = None


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere: not provably loopback


def check_bind(host: str, settings: OrcaSettings) -> None:
    """Raise UnsafeBind unless `host` is loopback or the intake requires tokens."""
    if settings.intake_auth_enabled or is_loopback(host):
        return
    raise UnsafeBind(
        f"refusing to serve the intake on {host}: no ORCA_INTAKE_TOKENS (nor ORCA_INTAKE_JWT_SECRET / "
        "ORCA_INTAKE_JWKS_URL) is set, so anyone who can reach it could write documents. Set "
        "ORCA_INTAKE_TOKENS=<a long random token> or listen on 127.0.0.1 (ORCA_INTAKE_HOST)."
    )


def _refuse(message: str, *, error: str | None = "invalid_token") -> Unauthorized:
    challenge = 'Bearer realm="orca"'
    if error:
        # Messages may quote parts of the token: keep the header to printable ASCII without quotes.
        description = re.sub(r'[^\x20-\x7e]|["\\]', "", message)
        challenge += f', error="{error}", error_description="{description}"'
    return Unauthorized(message, headers={"WWW-Authenticate": challenge})


def _matches_static(token: str, tokens: tuple[str, ...]) -> bool:
    # Compare with every token, without stopping early, so timing reveals neither which nor whether one matched.
    presented = token.encode("utf-8", "surrogateescape")
    matched = False
    for candidate in tokens:
        matched |= hmac.compare_digest(presented, candidate.encode("utf-8", "surrogateescape"))
    return matched


def _verify_jwt(token: str, settings: OrcaSettings, jwks: jwt.PyJWKClient | None) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise _refuse("the token is neither a configured token nor a well-formed JWT") from None
    options = {"require": ["exp"], "verify_aud": settings.intake_jwt_audience is not None}
    if header.get("alg") == "HS256" and settings.intake_jwt_secret:
        key, algorithms = settings.intake_jwt_secret, ["HS256"]
    elif jwks is not None and header.get("alg") in JWKS_ALGORITHMS:
        try:
            signing_key = jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            message = f"cannot fetch the JWKS to verify the token: {error}"
            raise ServiceUnavailable(message, code="auth_unavailable") from None
        except jwt.PyJWKClientError as error:
            raise _refuse(f"no key of the JWKS verifies this token ({error})") from None
        except jwt.InvalidTokenError:
            raise _refuse("the token is not a well-formed JWT") from None
        key, algorithms = signing_key.key, [header["alg"]]
    else:
        raise _refuse(f"tokens signed with {header.get('alg')!r} are not accepted")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.intake_jwt_audience,
            issuer=settings.intake_jwt_issuer,
            options=options,
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise _refuse("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise _refuse("the token is not meant for this audience") from None
    except jwt.InvalidIssuerError:
        raise _refuse("the token comes from another issuer") from None
    except jwt.MissingRequiredClaimError as error:
        raise _refuse(f"the token lacks the required claim '{error.claim}'") from None
    except jwt.InvalidTokenError:
        raise _refuse("the token's signature or claims are invalid") from None
    return _check_lifetime(claims, settings.intake_jwt_max_lifetime)


def _check_lifetime(claims: dict, max_lifetime: int) -> dict:
    """A token must say when it expires as a number (PyJWT also takes a numeric string) and not too far ahead:
    a token valid for a century is as good as a password that never changes."""
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise _refuse("the token's 'exp' claim must be a number (seconds since the epoch)")
    if expires - time.time() > max_lifetime + CLOCK_SKEW_SECONDS:
        raise _refuse(f"the token is valid for longer than the {max_lifetime} seconds this intake accepts")
    return claims


async def authenticate(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """The route dependency: the caller `AuthenticateFirst` (orca_intake/auth_first.py) identified from the
    headers before the body was read, or, where that middleware is not installed, `identify` now."""
    found = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    return found if found is not None else await identify(request)


async def identify(request: Request) -> Principal:
    """The caller, or 401 (with `WWW-Authenticate: Bearer`) for a missing, malformed, wrong or expired token.

    Reads the headers only. `async def` (no thread hop per request): only a JWKS lookup, which may fetch
    keys over the network, runs in a worker thread.
    """
    settings: OrcaSettings = request.app.state.settings
    if not settings.intake_auth_enabled:
        # `python -m orca_intake` only binds loopback without auth; this also covers a hand-run uvicorn.
        if not settings.intake_trust_loopback:
            raise Forbidden(
                "this intake trusts no caller: it has no ORCA_INTAKE_TOKENS and ORCA_INTAKE_TRUST_LOOPBACK is off "
                "(behind a local reverse proxy every caller would look local)",
                code="no_trusted_callers",
            )
        client = request.client.host if request.client else ""
        if not is_loopback(client):
            raise Forbidden(
                "this intake has no ORCA_INTAKE_TOKENS and accepts requests from this machine only",
                code="loopback_only",
            )
        return Principal("none")
    header = request.headers.get("authorization")
    if not header:
        raise _refuse("a bearer token is required (Authorization: Bearer <token>)", error=None)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _refuse("malformed Authorization header: expected 'Bearer <token>'", error="invalid_request")
    if settings.intake_tokens and _matches_static(token, settings.intake_tokens):
        return Principal("token", hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:16])
    if settings.intake_jwt_secret or settings.intake_jwks_url:
        jwks = getattr(request.app.state, "jwks_client", None)
        if jwks is not None:
            claims = await run_in_threadpool(_verify_jwt, token, settings, jwks)
        else:
            claims = _verify_jwt(token, settings, None)
        subject = claims.get("sub")
        return Principal("jwt", subject if isinstance(subject, str) else None)
    raise _refuse("the token is not valid")
