"""TLS: the server's SSL context from the ``--ssl-*`` settings (with one-line errors for the
usual mistakes), and what a connection's handshake settled, for the ASGI ``tls`` extension.

Only the standard library's ``ssl``. The context requires TLS 1.2 or later and advertises ALPN
``http/1.1`` (RFC 7301), the only protocol synack speaks. It is built anew by every process
that serves (each worker after fork, the process re-executed by a SIGHUP reload), so a reload
picks up a renewed certificate and key; connections already open keep the ones they
negotiated.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from .exchange import TlsInfo

__all__ = ["TlsSettings", "TlsError", "ServerTls", "load", "CERT_REQS"]

#: ``--ssl-cert-reqs`` values: whether clients must present a certificate (mutual TLS).
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}

#: ``SSLObject.version()`` → the protocol version number the ASGI extension wants
#: (RFC 8446 §4.2.1 legacy_version values).
_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

#: Short attribute names for RFC 4514 strings (§3); others keep the name ``ssl`` gives them.
_SHORT_NAMES = {
    "commonName": "CN", "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
    "organizationName": "O", "organizationalUnitName": "OU", "streetAddress": "STREET",
    "domainComponent": "DC", "userId": "UID",
}


class TlsError(Exception):
    """The TLS settings cannot be used; the message says which file or setting and why."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The ``--ssl-*`` settings (paths are as given; nothing is read until ``load``)."""

    certfile: str
    keyfile: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    cert_reqs: str = "none"
    ciphers: str | None = None


class ServerTls:
    """A loaded SSL context and what every connection's ``TlsInfo`` shares."""

    def __init__(self, context: ssl.SSLContext, server_cert: str | None) -> None:
        self.context = context
        #: The server's own certificate (PEM), for the ASGI extension's ``server_cert``.
        self.server_cert = server_cert
        # The IANA number of each cipher suite (OpenSSL's id keeps it in the low 16 bits).
        self._suites = {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}

    def describe(self, transport: Any) -> TlsInfo | None:
        """What the handshake of ``transport``'s connection settled (None without TLS)."""
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        cipher = ssl_object.cipher()
        chain: tuple[str, ...] = ()
        name = None
        der = ssl_object.getpeercert(binary_form=True)
        if der is not None:
            chain = _chain(ssl_object, der)
            name = rfc4514_name(ssl_object.getpeercert())
        return TlsInfo(
            server_cert=self.server_cert,
            client_cert_chain=chain,
            client_cert_name=name,
            # A certificate that fails verification fails the handshake (with "optional" too),
            # so a connection that reached HTTP has none to report.
            client_cert_error=None,
            tls_version=_VERSIONS.get(ssl_object.version() or ""),
            cipher_suite=self._suites.get(cipher[0]) if cipher else None,
        )


def load(settings: TlsSettings) -> ServerTls:
    """Build the server context from ``settings``, reading every file now.

    Raises:
        TlsError: a file is missing or unreadable, holds no certificate or key, the key does
            not match the certificate, the password is wrong or missing, or no cipher is left.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    # Every handshake does a full key exchange unless tickets are on; keep OpenSSL's default
    # (stateless tickets), but never renegotiate (a CPU cost a client could impose at will).
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    _load_chain(context, settings)
    if settings.ca_certs is not None:
        _load_ca(context, settings.ca_certs)
    context.verify_mode = CERT_REQS[settings.cert_reqs]
    if settings.ciphers:
        try:
            context.set_ciphers(settings.ciphers)
        except ssl.SSLError:
            raise TlsError(f"--ssl-ciphers {settings.ciphers!r} selects no cipher") from None
    return ServerTls(context, _first_certificate(settings.certfile))


class _NoPassword(Exception):
    pass


def _ask_no_one() -> str:
    # Called by OpenSSL for an encrypted key when no password was given: without this it would
    # prompt on the terminal, and a server started by a service manager would hang.
    raise _NoPassword


def _load_chain(context: ssl.SSLContext, settings: TlsSettings) -> None:
    certfile, keyfile = settings.certfile, settings.keyfile
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if path is not None:
            _check_readable(flag, path)
    password: Any = settings.password if settings.password is not None else _ask_no_one
    try:
        context.load_cert_chain(certfile, keyfile, password)
    except _NoPassword:
        raise TlsError(f"the key in {keyfile or certfile} is encrypted: give --ssl-keyfile-password") from None
    except ssl.SSLError as error:
        raise TlsError(_explain_chain(error, certfile, keyfile, settings.password)) from None
    except OSError as error:
        raise TlsError(f"cannot load {certfile}: {error.strerror or error}") from None


def _explain_chain(error: ssl.SSLError, certfile: str, keyfile: str | None, password: str | None) -> str:
    reason = (error.reason or "").upper()
    key = keyfile or certfile
    if "KEY_VALUES_MISMATCH" in reason:
        return f"the key in {key} does not match the certificate in {certfile}"
    if password is not None and _encrypted(key):
        # OpenSSL says only "PEM lib" (or "bad decrypt") for a wrong password.
        return f"cannot decrypt the key in {key}: wrong --ssl-keyfile-password"
    if not _holds(certfile, "CERTIFICATE"):
        return f"{certfile} holds no certificate in PEM form"
    if not _holds(key, "PRIVATE KEY"):
        hint = " (give it with --ssl-keyfile)" if keyfile is None else ""
        return f"{key} holds no private key in PEM form{hint}"
    return f"cannot use the certificate in {certfile} with the key in {key}: {error.reason or error}"


def _holds(path: str, label: str) -> bool:
    """Whether ``path`` has a PEM block whose label ends with ``label``."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError:
        return False
    return f"{label}-----" in text and "-----BEGIN " in text


def _encrypted(path: str) -> bool:
    return _holds(path, "ENCRYPTED PRIVATE KEY") or (_holds(path, "PRIVATE KEY") and _has_proc_type(path))


def _has_proc_type(path: str) -> bool:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return "Proc-Type: 4,ENCRYPTED" in file.read()
    except OSError:
        return False


def _load_ca(context: ssl.SSLContext, path: str) -> None:
    _check_readable("--ssl-ca-certs", path)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as error:
        raise TlsError(f"--ssl-ca-certs {path} holds no usable CA certificate: {error.reason or error}") from None
    except OSError as error:
        raise TlsError(f"cannot read --ssl-ca-certs {path}: {error.strerror or error}") from None


def _check_readable(flag: str, path: str) -> None:
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as error:
        raise TlsError(f"cannot read {flag} {path}: {error.strerror or error}") from None


def _first_certificate(path: str) -> str | None:
    """The first PEM certificate in ``path`` (the server's own; a chain may follow)."""
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError:
        return None
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        return None
    return text[start : stop + len(end)] + "\n"


def _chain(ssl_object: Any, leaf: bytes) -> tuple[str, ...]:
    """The client's certificates, leaf first, as PEM. Python 3.13 gives the whole verified
    chain; before it, only the leaf is reachable."""
    get_chain = getattr(ssl_object, "get_verified_chain", None)
    certificates = [leaf]
    if get_chain is not None:
        try:
            certificates = [bytes(item) for item in get_chain()] or certificates
        except (ssl.SSLError, ValueError):
            pass
    return tuple(ssl.DER_cert_to_PEM_cert(der) for der in certificates)


def rfc4514_name(certificate: Any) -> str | None:
    """The subject of a decoded certificate (``getpeercert()``) as an RFC 4514 string."""
    subject = certificate.get("subject") if certificate else None
    if not subject:
        return None
    # RFC 4514 §2.1: the last RDN of the sequence first.
    return ",".join(
        "+".join(f"{_SHORT_NAMES.get(name, name)}={_escape(value)}" for name, value in rdn)
        for rdn in reversed(subject)
    )


def _escape(value: str) -> str:
    # RFC 4514 §2.4: these characters anywhere, a leading space or "#", a trailing space.
    escaped = "".join("\\" + char if char in '"+,;<>\\' else "\\00" if char == "\0" else char
                      for char in value)
    if escaped[:1] in (" ", "#"):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped
