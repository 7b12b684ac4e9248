"""CityGML input: the files to read and the one place where their XML is parsed.

:func:`open_citygml_sources` yields the ``.gml`` file itself or each CityGML member of a zip (the
form the states publish). The reader and the checks parse that untrusted XML only through
:func:`iterparse_untrusted` and :func:`parse_untrusted`, which share :data:`UNTRUSTED_XML_OPTIONS`.
Both refuse a document whose DOCTYPE declares entities (:func:`reject_entity_declarations`): with
entity expansion off it would be read silently incomplete, and such declarations are the stuff of
"billion laughs" and XXE attacks. No DTD is loaded and nothing is fetched from the network.
(The bundled XML schemas are trusted files and loaded by :mod:`.validation` with its own parser.)
"""

from __future__ import annotations

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
    if not names:
        return
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

    def __init__(self, context: etree.iterparse, source: str, dataset: str):
        self._context = context
        self._source = source
        self._dataset = dataset

    def __iter__(self) -> Iterator[tuple[str, etree._Element]]:
        checked = False
        for event, el in self._context:
            if not checked:
                reject_entity_declarations(el.getroottree(), self._source, self._dataset)
                checked = True
            yield event, el
        if not checked and self._context.root is not None:
            reject_entity_declarations(self._context.root.getroottree(), self._source, self._dataset)

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
    context = etree.iterparse(source, events=("end",), tag=tags, remove_blank_text=remove_blank_text,
                              **UNTRUSTED_XML_OPTIONS)
    return _CheckedIterparse(context, name or _name_of(source), dataset)


def parse_untrusted(source: Any, *, name: str | None = None, dataset: str = "citygml"
                    ) -> etree._ElementTree:
    """The whole document (file name or binary stream), parsed with :data:`UNTRUSTED_XML_OPTIONS`;
    a DOCTYPE that declares entities is refused (:func:`reject_entity_declarations`)."""
    tree = etree.parse(source, etree.XMLParser(**UNTRUSTED_XML_OPTIONS))
    reject_entity_declarations(tree, name or _name_of(source), dataset)
    return tree
