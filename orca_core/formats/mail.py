"""E-mail (`.eml`, RFC 5322): the Subject as a `#` heading, then the body, with the standard library's `email`.

The text/plain body is preferred, else the text/html one through html_to_text. Attachments are not indexed;
their names are listed on a last line, so a search for "the invoice PDF" still finds the message.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.failures import unreadable
from orca_core.formats.html import html_to_text
from orca_core.formats.sniff import TEXT, require

_ADDRESS_HEADERS = {"from": "From", "to": "To", "cc": "Cc"}


def extract_eml(data: bytes) -> Extracted:
    require(data, ".eml", TEXT)
    try:
        message = BytesParser(policy=email.policy.default).parsebytes(data)
        subject = _header(message, "Subject")
        attachments = [_attachment_name(part) for part in message.iter_attachments()]
        body_part = message.get_body(preferencelist=("plain", "html"))
        body = _body_text(body_part) if body_part is not None else ""
        properties = _properties(message)
    except DocumentError:
        raise
    except Exception as error:  # noqa: BLE001 - a malformed header or MIME structure the parser could not take
        raise unreadable("e-mail", error) from None
    if not body.strip():
        if attachments:
            raise DocumentError(
                f"e-mail without a text body (only attachments: {', '.join(attachments)}); attachments are not indexed"
            )
        raise DocumentError("e-mail without a text body")
    blocks = [f"# {subject}"] if subject else []
    blocks.append(body.strip())
    if attachments:
        blocks.append("Attachments: " + ", ".join(attachments))
    return Extracted(text="\n\n".join(blocks), title=subject or None, properties=properties)


def _body_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset: read it as UTF-8, keep what decodes
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    return html_to_text(content) if part.get_content_subtype() == "html" else content


def _attachment_name(part: EmailMessage) -> str:
    name = part.get_filename()
    if name:
        return " ".join(name.split())
    return f"unnamed {part.get_content_type()}"


def _properties(message: EmailMessage) -> dict[str, str]:
    properties: dict[str, str] = {}
    for name, header in _ADDRESS_HEADERS.items():
        value = _header(message, header)
        if value:
            properties[name] = value
    try:
        moment = getattr(message.get("Date"), "datetime", None)  # None when the Date header does not parse
    except Exception:  # noqa: BLE001 - the header parser's own bugs on malformed dates: keep the raw text
        moment = None
    date = moment.isoformat() if moment is not None else _header(message, "Date")
    if date:
        properties["date"] = date
    message_id = _header(message, "Message-ID")
    if message_id:
        properties["message_id"] = message_id
    return properties


def _header(message: EmailMessage, name: str) -> str:
    """A header decoded, on one line; its raw text when the parser fails on it (the standard library's address
    parser raises IndexError on some malformed addresses), so a bad header never costs the body."""
    try:
        value = str(message.get(name, ""))
    except Exception:  # noqa: BLE001 - see above
        value = next((str(raw) for key, raw in message.raw_items() if key.lower() == name.lower()), "")
    return " ".join(value.split())
