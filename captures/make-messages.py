#!/usr/bin/env python3
"""Write the messages that make-captures.sh sends, byte for byte the same on every run.

Usage: make-messages.py OUTDIR

Each message is written as OUTDIR/<name>.eml with CRLF line endings, and each
attachment also as OUTDIR/<file name>, so its SHA-256 can be checked against
what a parser extracts from a capture. Only the Python standard library is used,
so the expected values do not depend on mailtap's own MIME code.
"""

import hashlib
import sys
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path


def make_pdf(title: str, size: int) -> bytes:
    """Return a small valid PDF of exactly `size` bytes.

    The page shows `title`. The rest is a /Filler stream of SHA-256 chain bytes,
    so the file does not compress and base64 lines look like a real scan.
    """
    filler_len = 0
    for _ in range(4):
        content = f"BT /F1 18 Tf 72 720 Td ({title}) Tj ET".encode("ascii")
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
        filler = bytearray()
        block = hashlib.sha256(title.encode("utf-8")).digest()
        while len(filler) < filler_len:
            filler += block
            block = hashlib.sha256(block).digest()
        filler = bytes(filler[:filler_len])
        objects.append(b"<< /Length %d >>\nstream\n" % len(filler) + filler + b"\nendstream")

        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
        xref_at = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        for offset in offsets:
            out += b"%010d 00000 n \n" % offset
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objects) + 1,
            xref_at,
        )
        # Each pass sets the filler so that the file would be `size` bytes long.
        # The digits of /Length and of the offsets can change once, so the
        # length settles by the third pass.
        if len(out) == size:
            break
        filler_len += size - len(out)
    assert len(out) == size, (len(out), size)
    return bytes(out)


def base_message(sender: str, to: list[str], subject: str, date: str, message_id: str) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    return msg


def build_messages() -> dict[str, tuple[EmailMessage, dict[str, bytes]]]:
    messages: dict[str, tuple[EmailMessage, dict[str, bytes]]] = {}

    # UTF-8 subject: the policy encodes it as RFC 2047 encoded-words.
    msg = base_message(
        "Alice Example <alice@corp.example>",
        ["Carol Partner <carol@partner.example>"],
        "Grüße aus dem Büro – Angebot für Q3",
        "Mon, 04 Mar 2024 09:15:00 +0100",
        "<20240304091500.office1@ws-alice.corp.example>",
    )
    msg.set_content("Hallo Carol,\n\nanbei die Grüße aus dem Büro. Das Angebot folgt.\n\nAlice\n", charset="utf-8", cte="quoted-printable")
    messages["office-1-utf8-subject"] = (msg, {})

    # Two recipients, and the relay rejects nobody@corp.example with 550.
    msg = base_message(
        "alice@corp.example",
        ["bob@corp.example", "nobody@corp.example"],
        "Team lunch on Friday",
        "Mon, 04 Mar 2024 09:20:00 +0100",
        "<20240304092000.office2@ws-alice.corp.example>",
    )
    msg.set_content("Hi all,\n\nlunch is at 12:30 on Friday.\n\nAlice\n", cte="7bit")
    messages["office-2-two-recipients"] = (msg, {})

    # Sent over STARTTLS with AUTH. The relay forwards it to the MX in clear text.
    csv = b"quarter,revenue,costs\r\nQ1,1200,800\r\nQ2,1350,820\r\nQ3,1500,900\r\n"
    msg = base_message(
        "alice@corp.example",
        ["dave@partner.example"],
        "Quarterly figures",
        "Mon, 04 Mar 2024 09:25:00 +0100",
        "<20240304092500.office3@ws-alice.corp.example>",
    )
    msg.set_content("Dave,\n\nthe figures are attached.\n\nAlice\n", cte="7bit")
    msg.add_attachment(csv, maintype="text", subtype="csv", filename="q3-figures.csv")
    # A fixed boundary keeps the bytes the same on every run, where the
    # library would pick a random one.
    msg.set_boundary("=_mailtap_office3")
    messages["office-3-starttls-auth"] = (msg, {"q3-figures.csv": csv})

    # Scan-to-email through the relay, AUTH PLAIN without TLS.
    pdf = make_pdf("Scan 2024-03-04 10:15", 6000)
    msg = base_message(
        "Brother MFC-L2750DW <scanner@corp.example>",
        ["alice@corp.example"],
        "Scanned from BRN30055C310031",
        "Mon, 04 Mar 2024 10:15:00 +0100",
        "<20240304101500.scan1@BRN30055C310031.corp.example>",
    )
    msg.set_content("Scanned document attached.\n", cte="7bit")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="Scan_20240304_101500.pdf")
    msg.set_boundary("=_mailtap_scan1")
    messages["printer-1-relay-auth"] = (msg, {"Scan_20240304_101500.pdf": pdf})

    # The same printer straight to the partner's MX: relay bypass.
    pdf = make_pdf("Scan 2024-03-04 10:17", 4000)
    msg = base_message(
        "Brother MFC-L2750DW <scanner@corp.example>",
        ["carol@partner.example"],
        "Scanned from BRN30055C310031",
        "Mon, 04 Mar 2024 10:17:00 +0100",
        "<20240304101700.scan2@BRN30055C310031.corp.example>",
    )
    msg.set_content("Scanned document attached.\n", cte="7bit")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="Scan_20240304_101700.pdf")
    msg.set_boundary("=_mailtap_scan2")
    messages["printer-2-direct-mx"] = (msg, {"Scan_20240304_101700.pdf": pdf})

    return messages


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: make-messages.py OUTDIR")
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    for name, (msg, attachments) in build_messages().items():
        # The SMTP policy writes CRLF line endings, as they appear on the wire.
        (outdir / f"{name}.eml").write_bytes(msg.as_bytes())
        for filename, data in attachments.items():
            (outdir / filename).write_bytes(data)
            print(f"{name} {filename} {len(data)} {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
