"""S3's XML: answers rendered in its namespace, the error document, and the request bodies
(tag sets, delete lists, part lists) parsed without trusting them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from starlette.responses import Response

from beanpole.server.eb.s3.errors import Fault
from beanpole.services.buckets import InvalidTag

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
OWNER_NAME = "beanpole"


# rendering --------------------------------------------------------------------------------


def xml_response(
    root: ET.Element, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    root.set("xmlns", NS)
    return _xml_body(root, status, headers or {})


def _xml_body(root: ET.Element, status: int, headers: dict[str, str]) -> Response:
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
    return Response(body.encode(), status, headers=headers, media_type="application/xml")


def error(
    status: int, code: str, message: str, request_id: str, details: dict[str, str], head: bool
) -> Response:
    if head:  # S3 answers HEAD errors with the status alone
        return Response(status_code=status, headers={"content-length": "0"})
    root = el(
        "Error",
        el("Code", code),
        el("Message", message),
        *(el(name, value) for name, value in details.items()),
        el("RequestId", request_id),
        el("HostId", request_id),
    )
    return _xml_body(root, status, {})


def el(tag: str, *children: ET.Element | str | None) -> ET.Element:
    """An element with text (a str child) and sub-elements (None children are skipped)."""
    element = ET.Element(tag)
    for child in children:
        if isinstance(child, str):
            element.text = child
        elif child is not None:
            element.append(child)
    return element


def owner() -> ET.Element:
    return el("Owner", el("ID", OWNER_ID), el("DisplayName", OWNER_NAME))


def tagging(tags: dict[str, str]) -> ET.Element:
    return el(
        "Tagging",
        el("TagSet", *(el("Tag", el("Key", k), el("Value", v)) for k, v in tags.items())),
    )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# request bodies ---------------------------------------------------------------------------


def parse(body: bytes) -> ET.Element:
    # Python's expat caps entity expansion and ElementTree fetches no external entities; a
    # DOCTYPE has no place in S3's bodies, so it is refused outright.
    if b"<!DOCTYPE" in body.upper():
        raise Fault(400, "MalformedXML", "The XML body must not carry a DOCTYPE.")
    try:
        return ET.fromstring(body)  # noqa: S314 (see above)
    except ET.ParseError:
        raise Fault(400, "MalformedXML", "The XML body is not well-formed.") from None


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def text(parent: ET.Element, name: str, *, strip: bool = True) -> str:
    for child in parent:
        if local(child.tag) == name:
            return (child.text or "").strip() if strip else child.text or ""
    return ""


def parse_tags(body: bytes) -> dict[str, str]:
    doc = parse(body)
    tags: dict[str, str] = {}
    for tag_set in doc:
        if local(tag_set.tag) != "TagSet":
            continue
        for tag in tag_set:
            key = next((c.text or "" for c in tag if local(c.tag) == "Key"), "")
            value = next((c.text or "" for c in tag if local(c.tag) == "Value"), "")
            if key in tags:
                raise InvalidTag(f"Tag key {key!r} appears twice.")
            tags[key] = value
    return tags
