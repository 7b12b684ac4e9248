"""CityGML 2.0 (AdV profile) reading and writing with lxml.

Germany's official LoD2 building models are CityGML 2.0 tiles in the profile of the AdV (the
surveying authorities' working committee), e.g. Thuringia's ``LoD2_32_{E}_{N}_2_TH.zip``. This
package

- **writes** buildings (:class:`citymodel.geometry3d.Solid` with semantic surfaces) as such tiles,
  streaming, so that memory does not grow with the number of buildings (:func:`write_citygml`,
  :func:`write_citygml_zip`; module :mod:`.writer`);
- **reads** them (plain ``.gml`` or zips holding them) one ``bldg:Building`` at a time
  (:func:`iter_citygml`, :func:`read_citygml`; :mod:`.reader`), and turns the result into a
  GeoDataFrame of footprints with the 3D surfaces as a compact JSON column
  (:func:`citygml_to_frame`, :mod:`.frame`; :func:`solids_from_json`, :mod:`.solids_json`);
- **checks** files: against the official XML schemas, used offline (:func:`validate_citygml_xsd`),
  and against the structural rules of the AdV profile that an XML schema cannot express
  (:func:`check_citygml_structure`: xlinks resolve, rings closed, ids unique; :mod:`.validation`).

``srsName`` values (AdV names such as ``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH`` and EPSG URNs)
are resolved in :mod:`.crs`; untrusted XML is parsed only in :mod:`.xml_input`.
"""

from .crs import CityGMLCRS, parse_srs_name, srs_name_for
from .frame import citygml_to_frame
from .namespaces import (BLDG_NS, CORE_NS, GEN_NS, GML_NS, NSMAP, SCHEMA_LOCATION, XAL_NS,
                         XLINK_NS, XSI_NS)
from .reader import DEFAULT_CONFIG_KEY, CityGMLBuilding, iter_citygml, read_citygml
from .solids_json import solids_from_json, solids_to_json
from .validation import SCHEMA_DIR, ValidationReport, check_citygml_structure, validate_citygml_xsd
from .writer import ADV_ALKIS_INFORMATION_SYSTEM, ADV_UOM_M, write_citygml, write_citygml_zip

__all__ = [
    "ADV_ALKIS_INFORMATION_SYSTEM", "ADV_UOM_M", "BLDG_NS", "CORE_NS", "DEFAULT_CONFIG_KEY",
    "GEN_NS", "GML_NS", "NSMAP", "SCHEMA_DIR", "SCHEMA_LOCATION", "XAL_NS", "XLINK_NS", "XSI_NS",
    "CityGMLBuilding", "CityGMLCRS", "ValidationReport",
    "check_citygml_structure", "citygml_to_frame", "iter_citygml", "parse_srs_name",
    "read_citygml", "solids_from_json", "solids_to_json", "srs_name_for", "validate_citygml_xsd",
    "write_citygml", "write_citygml_zip",
]
