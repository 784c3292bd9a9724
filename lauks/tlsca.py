"""A school's own certificate authority and its broker's certificate, made with Debian's ``openssl``.

Kits carry ``ca.crt`` and verify the broker against it, so the CA is made once and kept: running
``lauks tls init`` again re-issues only the broker's certificate (for new host names, or before it
expires), which the kits keep trusting. The CA's key never leaves ``<state_dir>/tls/``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lauks.privatefile import private_dir

CA_DAYS = 3650
BROKER_DAYS = 825


class TlsError(RuntimeError):
    pass


@dataclass(frozen=True)
class SchoolCa:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def broker_cert(self) -> Path:
        return self.dir / "broker.crt"

    @property
    def broker_key(self) -> Path:
        return self.dir / "broker.key"


def _openssl(*args: str) -> None:
    program = shutil.which("openssl")
    if not program:
        raise TlsError("openssl is not installed: apt-get install openssl")
    result = subprocess.run([program, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {result.stderr.strip()}")


# One label of a host name (RFC 1123): letters, digits and hyphens, 1-63 long, no hyphen at either end.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def host_entry(host: str) -> str:
    """``IP:<address>`` or ``DNS:<name>`` for one name kits connect to; TlsError with a sentence if it
    is neither. Non-ASCII names become their IDNA (punycode) form, which is what a kit's TLS library
    compares, and every name is lower-cased."""
    text = host.strip()
    if not text:
        raise TlsError("an empty --host was given: give a host name such as lauks.school.lv or an IP address")
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise TlsError(f"{host!r} contains control characters: give a host name or an IP address")
    if ":" in text or text.startswith("["):  # only an IPv6 address has a colon
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            address = None
        if address is None or address.scope_id:
            raise TlsError(f"{host!r} is not an IPv6 address Lauks can put in a certificate: write it without "
                           "brackets, port or zone, e.g. fd00::10")
        return f"IP:{address.compressed}"
    try:
        return f"IP:{ipaddress.IPv4Address(text).compressed}"
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text  # the root's dot is not part of the name in a SAN
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()  # IDNA 2003: Python's own codec
    except UnicodeError:
        raise TlsError(f"{host!r} is not a valid host name: a part between dots is empty, longer than 63 "
                       "characters, or has characters a name cannot have") from None
    if len(ascii_name) > 253:
        raise TlsError(f"{host!r} is longer than the 253 characters a host name may have")
    labels = ascii_name.split(".")
    for label, given in zip(labels, name.split(".") if name.count(".") == len(labels) - 1 else labels, strict=False):
        if not _LABEL.match(label):
            raise TlsError(f"{host!r} is not a valid host name: {given!r} is not a label of letters, digits and "
                           "hyphens (1-63 long, no hyphen at either end); give a name such as lauks.school.lv "
                           "or an IP address")
    if labels[-1].isdigit():
        raise TlsError(f"{host!r} looks like an IP address but is not one: give four numbers 0-255 separated "
                       "by dots, e.g. 192.168.1.10")
    return f"DNS:{ascii_name}"


def subject_alt_names(hosts: list[str]) -> str:
    """``DNS:`` or ``IP:`` entries for the names the kits will connect to, each once."""
    if not hosts:
        raise TlsError("give at least one host name or IP address that kits use to reach the broker")
    entries = list(dict.fromkeys(host_entry(host) for host in hosts))
    return ",".join(entries)


def normalise_hosts(hosts: list[str]) -> list[str]:
    """The names as the certificate holds them (lower case, punycode, IPs in their short form), each once."""
    return [entry.split(":", 1)[1] for entry in subject_alt_names(hosts).split(",")]


def _subject_value(text: str) -> str:
    """``text`` as one attribute value of openssl's ``-subj``, where ``/`` starts an attribute and ``+``
    joins one: both (and the escape itself) are escaped, so a name cannot add attributes."""
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise TlsError(f"{text!r} contains control characters")
    return re.sub(r"([\\/+=])", r"\\\1", text)


def init_school_ca(tls_dir: Path, hosts: list[str], school: str = "Lauks school") -> SchoolCa:
    """Make the CA if there is none yet, then issue the broker a certificate for ``hosts``.

    The keys are made in a private work folder and renamed into place: never readable by others, and
    a crash leaves the old key and certificate or the new ones."""
    ca = SchoolCa(tls_dir)
    san = subject_alt_names(hosts)
    if not school.strip():
        raise TlsError("the school's name (--school) is empty")
    organisation = _subject_value(school)
    first = san.split(",")[0].split(":", 1)[1]
    common_name = f"/CN={first}" if len(first) <= 64 else ""  # a CN is at most 64 characters; the SAN counts
    private_dir(tls_dir)
    with tempfile.TemporaryDirectory(dir=tls_dir) as work_dir:  # made 0700
        work = Path(work_dir)
        if not (ca.ca_cert.exists() and ca.ca_key.exists()):
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(CA_DAYS), "-utf8",
                     "-keyout", str(work / "ca.key"), "-out", str(work / "ca.crt"),
                     "-subj", f"/O={organisation}/CN={organisation} CA",
                     "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            _install(work / "ca.key", ca.ca_key)
            _install(work / "ca.crt", ca.ca_cert, 0o644)
        csr, ext = work / "broker.csr", work / "broker.ext"
        ext.write_text(f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                       f"extendedKeyUsage=serverAuth\nsubjectAltName={san}\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-utf8", "-keyout", str(work / "broker.key"),
                 "-out", str(csr), "-subj", f"/O={organisation}{common_name}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.ca_cert), "-CAkey", str(ca.ca_key),
                 "-CAcreateserial", "-CAserial", str(work / "ca.srl"), "-sha256", "-days", str(BROKER_DAYS),
                 "-extfile", str(ext), "-out", str(work / "broker.crt"))
        _install(work / "broker.key", ca.broker_key)  # the broker's container copies its key in as root
        _install(work / "broker.crt", ca.broker_cert, 0o644)
    return ca


def _install(made: Path, final: Path, mode: int = 0o600) -> None:
    os.chmod(made, mode)
    os.replace(made, final)
