"""CityGML input: the files to read and the one place where their XML is parsed.

:func:`open_citygml_sources` yields the ``.gml`` file itself or each CityGML member of a zip (the
form the states publish). The reader and the checks parse that untrusted XML only through
:func:`iterparse_untrusted` and :func:`parse_untrusted`, which share :data:`UNTRUSTED_XML_OPTIONS`.
Both refuse a document whose DOCTYPE declares entities: its first bytes are searched before lxml
sees them (:func:`declared_entities`; libxml2 checks entity declarations while it reads the
DOCTYPE, so a "billion laughs" would otherwise end in a misleading syntax error), and the parsed
DOCTYPE is checked again (:func:`reject_entity_declarations`). With entity expansion off such a
document would be read silently incomplete, and entity declarations are the stuff of "billion
laughs" and XXE attacks. No DTD is loaded and nothing is fetched from the network.
(The bundled XML schemas are trusted files and loaded by :mod:`.validation` with its own parser.)
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import IO, Any, Iterator

from lxml import etree

from citymodel.errors import SourceDataError, dataset_error

#: lxml parser options for CityGML from outside: no network access and no entity resolution;
#: ``huge_tree`` lifts libxml2's limits on text size and tree depth (whole-city files are large).
UNTRUSTED_XML_OPTIONS: dict[str, Any] = {"huge_tree": True, "resolve_entities": False,
                                         "no_network": True}


def open_citygml_sources(path: Path, dataset: str) -> Iterator[tuple[str, IO[bytes]]]:
    """(display name, binary stream) of the .gml file or of each .gml/.xml member of a zip."""
    if not path.exists():
        raise dataset_error(SourceDataError, dataset, f"file {path} does not exist",
                            "download the tile again or fix the path in the catalog")
    if zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise dataset_error(SourceDataError, dataset, f"{path} is a broken zip ({exc})",
                                "download the tile again", record=path.name) from exc
        with zf:
            members = [m for m in zf.namelist()
                       if m.lower().endswith((".gml", ".citygml")) and not m.endswith("/")]
            if not members:
                members = [m for m in zf.namelist() if m.lower().endswith(".xml")
                           and not m.lower().rsplit("/", 1)[-1].startswith(("meta", "_"))]
            if not members:
                raise dataset_error(
                    SourceDataError, dataset,
                    f"zip {path.name} holds no CityGML file (.gml); it has {zf.namelist()[:10]}",
                    "check that the catalog's distribution is the LoD2 CityGML tile", record=path.name)
            for m in members:
                with zf.open(m) as fh:
                    yield f"{path}!{m}", fh
    else:
        with open(path, "rb") as fh:
            yield str(path), fh


def reject_entity_declarations(tree: etree._ElementTree, source: str, dataset: str) -> None:
    """Refuse a document whose DOCTYPE declares entities (general or parameter).

    Entity expansion is off (:data:`UNTRUSTED_XML_OPTIONS`), so such a document would be read
    with its entity references left out, silently different from what its author meant; and the
    declarations are what "billion laughs" and external-entity (XXE) attacks are made of. CityGML
    needs no DOCTYPE, so the document is rejected, not read.

    Raises
    ------
    SourceDataError
        Names the file (``record``), the first declared entities and the fix.
    """
    dtd = tree.docinfo.internalDTD
    if dtd is None:
        return
    names = [e.name for e in dtd.entities()]
    if names:
        _raise_entities(names, source, dataset)


#: how much of a document is searched for a DOCTYPE before lxml sees it
PROLOG_BYTES = 1 << 20

_ENTITY_DECL = re.compile(r"<!ENTITY\s+(?:%\s+)?([^\s>]+)")


def _decode_head(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if head[:2] in (b"<\x00", b"\x00<"):
        return head.decode("utf-16-le" if head[:1] == b"<" else "utf-16-be", errors="replace")
    return head.decode("latin-1")   # UTF-8 and every ASCII-compatible encoding: markup is ASCII


def declared_entities(head: bytes) -> list[str]:
    """Names of the entities declared in the DOCTYPE of a document's first bytes (its prolog).

    Searched before the document is parsed: libxml2 checks entity declarations while it reads the
    DOCTYPE, so a "billion laughs" would otherwise end in a misleading syntax error.
    """
    text = _decode_head(head)
    i = text.find("<!DOCTYPE")
    if i < 0:
        return []
    root = re.search(r"<[A-Za-z_]", text[i + 9:])   # the root element ends the prolog
    subset = text[i:] if root is None else text[i:i + 9 + root.start()]
    return _ENTITY_DECL.findall(subset)


class _Prefixed:
    """A binary stream whose first bytes were read already (to look at the prolog)."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                out, self._head = self._head + self._rest.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._rest.read(n)


def _checked_source(source: Any, name: str, dataset: str) -> tuple[Any, Any]:
    """(what lxml reads, an open file to close or None); refuses entity declarations first."""
    opened = None
    if isinstance(source, (str, os.PathLike)):
        opened = stream = open(source, "rb")
    else:
        stream = source
    try:
        head = stream.read(PROLOG_BYTES)
        names = declared_entities(head)
        if names:
            _raise_entities(names, name, dataset)
    except BaseException:
        if opened is not None:
            opened.close()
        raise
    return _Prefixed(head, stream), opened


def _raise_entities(names: list[str], source: str, dataset: str) -> None:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise dataset_error(
        SourceDataError, dataset,
        f"{source} declares {len(names)} XML entit{'y' if len(names) == 1 else 'ies'} in its DOCTYPE "
        f"({shown}); documents with entity declarations (entity expansion, external entities) are "
        f"not accepted, so the file was not read",
        "ask the publisher for the file without a DOCTYPE (CityGML needs none)",
        record=Path(str(source)).name)


class _CheckedIterparse:
    """:func:`lxml.etree.iterparse` that refuses entity declarations at its first event (or, for a
    document without any reported event, at its end); ``root`` as iterparse's."""

    def __init__(self, context: etree.iterparse, source: str, dataset: str, opened: IO[bytes] | None):
        self._context = context
        self._source = source
        self._dataset = dataset
        self._opened = opened

    def __iter__(self) -> Iterator[tuple[str, etree._Element]]:
        checked = False
        try:
            for event, el in self._context:
                if not checked:
                    reject_entity_declarations(el.getroottree(), self._source, self._dataset)
                    checked = True
                yield event, el
            if not checked and self._context.root is not None:
                reject_entity_declarations(self._context.root.getroottree(), self._source, self._dataset)
        finally:
            if self._opened is not None:
                self._opened.close()

    @property
    def root(self) -> etree._Element | None:
        return self._context.root


def _name_of(source: Any) -> str:
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<stream>")


def iterparse_untrusted(source: Any, tags: list[str], *, remove_blank_text: bool = False,
                        name: str | None = None, dataset: str = "citygml") -> _CheckedIterparse:
    """:func:`lxml.etree.iterparse` over the ``end`` events of ``tags`` with
    :data:`UNTRUSTED_XML_OPTIONS`; a DOCTYPE that declares entities is refused
    (:func:`reject_entity_declarations`) at the first event.

    Parameters
    ----------
    source
        File name or binary stream.
    tags
        Clark-notation tags to report (``"{http://www.opengis.net/gml}Envelope"``).
    remove_blank_text
        Drop whitespace-only text between elements (the reader does; the checks keep it).
    name, dataset
        The document's name and dataset in errors.
    """
    name = name or _name_of(source)
    stream, opened = _checked_source(source, name, dataset)
    context = etree.iterparse(stream, events=("end",), tag=tags, remove_blank_text=remove_blank_text,
                              **UNTRUSTED_XML_OPTIONS)
    return _CheckedIterparse(context, name, dataset, opened)


def parse_untrusted(source: Any, *, name: str | None = None, dataset: str = "citygml"
                    ) -> etree._ElementTree:
    """The whole document (file name or binary stream), parsed with :data:`UNTRUSTED_XML_OPTIONS`;
    a DOCTYPE that declares entities is refused (:func:`reject_entity_declarations`)."""
    name = name or _name_of(source)
    stream, opened = _checked_source(source, name, dataset)
    try:
        tree = etree.parse(stream, etree.XMLParser(**UNTRUSTED_XML_OPTIONS))
    finally:
        if opened is not None:
            opened.close()
    reject_entity_declarations(tree, name, dataset)
    return tree
