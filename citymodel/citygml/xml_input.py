"""CityGML input: the files to read and the one place where their XML is parsed.

:func:`open_citygml_sources` yields the ``.gml`` file itself or each CityGML member of a zip (the
form the states publish). The reader and the checks parse that untrusted XML only through
:func:`iterparse_untrusted` and :func:`parse_untrusted`, which share :data:`UNTRUSTED_XML_OPTIONS`.
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


def iterparse_untrusted(source: Any, tags: list[str], *, remove_blank_text: bool = False
                        ) -> etree.iterparse:
    """:func:`lxml.etree.iterparse` over the ``end`` events of ``tags`` with
    :data:`UNTRUSTED_XML_OPTIONS`.

    Parameters
    ----------
    source
        File name or binary stream.
    tags
        Clark-notation tags to report (``"{http://www.opengis.net/gml}Envelope"``).
    remove_blank_text
        Drop whitespace-only text between elements (the reader does; the checks keep it).
    """
    return etree.iterparse(source, events=("end",), tag=tags, remove_blank_text=remove_blank_text,
                           **UNTRUSTED_XML_OPTIONS)


def parse_untrusted(source: Any) -> etree._ElementTree:
    """The whole document (file name or binary stream), parsed with :data:`UNTRUSTED_XML_OPTIONS`."""
    return etree.parse(source, etree.XMLParser(**UNTRUSTED_XML_OPTIONS))
