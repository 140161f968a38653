"""Files in tests: a multipart body to send them, and a download over Prosody's HTTPS
upload service."""

from __future__ import annotations

import ssl

import aiohttp

from xmpp_post.lab.prosody import ProsodyServer

FileField = tuple[str, bytes, str]  # file name, content, type

def multipart(**fields: str | FileField | list[FileField]) -> aiohttp.FormData:
    """``curl -F``'s body: text fields, and (file name, bytes, type) for each file."""
    form = aiohttp.FormData()
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, tuple):
                form.add_field("file", one[1], filename=one[0], content_type=one[2])
            else:
                form.add_field(name, one)
    return form

async def download(prosody: ProsodyServer, url: str) -> tuple[bytes, str]:
    context = ssl.create_default_context(cafile=str(prosody.cert_file))
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as got:
        assert got.status == 200, url
        return await got.read(), got.headers["Content-Type"]
