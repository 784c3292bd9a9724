"""Handing mails to the school's SMTP server (stdlib ``smtplib``), or in development to files.

Every failure is a ``MailError`` with a sentence that names what to check; ``server`` says whether the server
as a whole failed (unreachable, a refused login: the other mails would fail too) or only this mail (a refused
recipient). A mail is marked sent only once the server has accepted it, so a refusal loses nothing.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Protocol

from alerting.settings import AlertSettings
from lauks.privatefile import private_dir, write_private


class MailError(Exception):
    def __init__(self, message: str, *, server: bool) -> None:
        super().__init__(message)
        self.message = message
        self.server = server


class Transport(Protocol):
    """An open way to send mail for one pass of the outbox."""

    def send(self, message: EmailMessage) -> None: ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...


def build_message(*, sender: str, recipient: str, subject: str, text: str, html: str, message_id: str,
                  date: object) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(date)  # type: ignore[arg-type]
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies are not sent back to it
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _reply(code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(said.split())}"


class SmtpTransport:
    """One connection to the SMTP server for a pass: STARTTLS or TLS as set, and a login if a username is set."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    @property
    def _where(self) -> str:
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    def __enter__(self) -> SmtpTransport:
        s = self.settings
        context = ssl.create_default_context(cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None)
        client: smtplib.SMTP | None = None
        try:
            if s.smtp_security == "tls":
                client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s, context=context)
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s)
            client.ehlo()
            if s.smtp_security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailError(f"the mail server {self._where} does not offer STARTTLS: set LAUKS_SMTP_SECURITY "
                                    "to tls (port 465) or, on the school's own network only, none", server=True)
                client.starttls(context=context)
                client.ehlo()
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                client.login(s.smtp_username, password)
        except MailError:
            self._close(client)
            raise
        except smtplib.SMTPAuthenticationError as error:
            self._close(client)
            raise MailError(f"the mail server {self._where} refused the login of {s.smtp_username!r} "
                            f"({_reply(error.smtp_code, error.smtp_error)}): check LAUKS_SMTP_USERNAME and "
                            "LAUKS_SMTP_PASSWORD", server=True) from error
        except smtplib.SMTPNotSupportedError as error:
            self._close(client)
            raise MailError(f"the mail server {self._where} does not take a login here ({error}): unset "
                            "LAUKS_SMTP_USERNAME, or use LAUKS_SMTP_SECURITY=starttls or tls", server=True) from error
        except ssl.SSLError as error:
            self._close(client)
            raise MailError(f"TLS with the mail server {self._where} failed ({error.reason or error}): check "
                            f"LAUKS_SMTP_SECURITY, that the server's certificate is made for {s.smtp_host}, and, "
                            "if the school's own CA signed it, LAUKS_SMTP_CA_FILE", server=True) from error
        except smtplib.SMTPResponseException as error:
            self._close(client)
            raise MailError(f"the mail server {self._where} refused the connection "
                            f"({_reply(error.smtp_code, error.smtp_error)})", server=True) from error
        except (OSError, smtplib.SMTPException) as error:
            self._close(client)
            what = "did not answer" if isinstance(error, ConnectionRefusedError | socket.timeout) else "failed"
            raise MailError(f"the mail server {self._where} {what} ({error or type(error).__name__}): check "
                            "LAUKS_SMTP_HOST and LAUKS_SMTP_PORT, and that it runs", server=True) from error
        self._client = client
        return self

    @staticmethod
    def _close(client: smtplib.SMTP | None) -> None:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._close(self._client)
        self._client = None

    def send(self, message: EmailMessage) -> None:
        assert self._client is not None, "send inside `with transport:`"
        recipient = str(message["To"])
        try:
            self._client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            refusals = "; ".join(f"{address}: {_reply(code, text)}" for address, (code, text)
                                 in error.recipients.items())
            raise MailError(f"the mail server {self._where} refused the recipient ({refusals}): check the "
                            "contact's address with `lauks site alerts`", server=False) from error
        except smtplib.SMTPSenderRefused as error:
            raise MailError(f"the mail server {self._where} refused the sender {parseaddr(str(message['From']))[1]!r} "
                            f"({_reply(error.smtp_code, error.smtp_error)}): set LAUKS_SMTP_FROM to an address "
                            "it lets this server send from", server=True) from error
        except smtplib.SMTPDataError as error:
            raise MailError(f"the mail server {self._where} refused the mail to {recipient} "
                            f"({_reply(error.smtp_code, error.smtp_error)})", server=False) from error
        except (OSError, smtplib.SMTPException) as error:
            raise MailError(f"the mail server {self._where} dropped the connection while sending to {recipient} "
                            f"({error or type(error).__name__})", server=True) from error


class FileTransport:
    """Development without a mail server: each mail an .eml file in ``folder`` (open it with a mail program)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> FileTransport:
        private_dir(self.folder)  # the mails name the school's contacts
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        return None

    def send(self, message: EmailMessage) -> None:
        name = str(message["Message-ID"]).strip("<>").split("@")[0]
        write_private(self.folder / f"{name}.eml", bytes(message))


def transport(settings: AlertSettings) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    return FileTransport(settings.mail_dir)


def sender_address(settings: AlertSettings) -> str:
    name, address = parseaddr(settings.sender_address)
    return formataddr((name, address)) if address else settings.sender_address
