"""A school's own certificate authority and its broker's certificate, made with Debian's ``openssl``.

Kits carry ``ca.crt`` and verify the broker against it, so the CA is made once and kept: running
``lauks tls init`` again re-issues only the broker's certificate (for new host names, or before it
expires), which the kits keep trusting. The CA's key never leaves ``<state_dir>/tls/``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def subject_alt_names(hosts: list[str]) -> str:
    """``DNS:`` or ``IP:`` entries for the names the kits will connect to."""
    if not hosts:
        raise TlsError("give at least one host name or IP address that kits use to reach the broker")
    entries = []
    for host in hosts:
        try:
            entries.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            if not host or any(c.isspace() or c in ",/" for c in host):
                raise TlsError(f"{host!r} is not a host name") from None
            entries.append(f"DNS:{host}")
    return ",".join(entries)


def init_school_ca(tls_dir: Path, hosts: list[str], school: str = "Lauks school") -> SchoolCa:
    """Make the CA if there is none yet, then issue the broker a certificate for ``hosts``."""
    ca = SchoolCa(tls_dir)
    san = subject_alt_names(hosts)
    tls_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o700)
    if not (ca.ca_cert.exists() and ca.ca_key.exists()):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(CA_DAYS),
                 "-keyout", str(ca.ca_key), "-out", str(ca.ca_cert), "-subj", f"/O={school}/CN={school} CA",
                 "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    with tempfile.TemporaryDirectory(dir=tls_dir) as work:
        csr, ext = Path(work) / "broker.csr", Path(work) / "broker.ext"
        ext.write_text(f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                       f"extendedKeyUsage=serverAuth\nsubjectAltName={san}\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca.broker_key), "-out", str(csr),
                 "-subj", f"/O={school}/CN={hosts[0]}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.ca_cert), "-CAkey", str(ca.ca_key),
                 "-CAcreateserial", "-CAserial", str(Path(work) / "ca.srl"), "-sha256", "-days", str(BROKER_DAYS),
                 "-extfile", str(ext), "-out", str(ca.broker_cert))
    for key in (ca.ca_key, ca.broker_key):  # the broker's container copies its key in as root
        os.chmod(key, 0o600)
    return ca
