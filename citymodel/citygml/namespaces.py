"""XML namespaces of CityGML 2.0 (and 1.0, which the reader also accepts) and tag-name helpers.

The writer declares :data:`NSMAP` and :data:`SCHEMA_LOCATION` on the ``core:CityModel``; the reader
and the checks compare Clark-notation tags (``{namespace}local``) against these names.
"""

from __future__ import annotations

from typing import Any

CORE_NS = "http://www.opengis.net/citygml/2.0"
BLDG_NS = "http://www.opengis.net/citygml/building/2.0"
GEN_NS = "http://www.opengis.net/citygml/generics/2.0"
GML_NS = "http://www.opengis.net/gml"
XLINK_NS = "http://www.w3.org/1999/xlink"
XAL_NS = "urn:oasis:names:tc:ciq:xsdschema:xAL:2.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

# CityGML 1.0 differs in the namespace version only for what the reader reads.
CORE_NS_BY_VERSION = {"2.0": CORE_NS, "1.0": "http://www.opengis.net/citygml/1.0"}
BLDG_NS_BY_VERSION = {"2.0": BLDG_NS, "1.0": "http://www.opengis.net/citygml/building/1.0"}
GEN_NS_BY_VERSION = {"2.0": GEN_NS, "1.0": "http://www.opengis.net/citygml/generics/1.0"}
VERSION_BY_BLDG_NS = {v: k for k, v in BLDG_NS_BY_VERSION.items()}

NSMAP = {"core": CORE_NS, "bldg": BLDG_NS, "gen": GEN_NS, "gml": GML_NS, "xlink": XLINK_NS,
         "xAL": XAL_NS, "xsi": XSI_NS}

SCHEMA_LOCATION = (
    f"{CORE_NS} http://schemas.opengis.net/citygml/2.0/cityGMLBase.xsd "
    f"{BLDG_NS} http://schemas.opengis.net/citygml/building/2.0/building.xsd "
    f"{GEN_NS} http://schemas.opengis.net/citygml/generics/2.0/generics.xsd")

#: Clark names of the attributes ``gml:id`` and ``xlink:href``.
GML_ID = f"{{{GML_NS}}}id"
XLINK_HREF = f"{{{XLINK_NS}}}href"


def local_name(tag: Any) -> str:
    """Local part of a Clark-notation tag (``"{ns}Building"`` -> ``"Building"``); ``""`` for the
    non-string tags of comments and processing instructions."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def tag_namespace(tag: str) -> str:
    """Namespace of a Clark-notation tag (``"{ns}Building"`` -> ``"ns"``); ``""`` where it has none."""
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
