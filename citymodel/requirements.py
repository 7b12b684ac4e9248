"""What each optional output needs from the deployment, and what a deployment therefore does not compute.

Some outputs exist only when the deployment file configures their input: road noise needs the
``roads`` role, flood exposure ``flood_zones``, sight lines ``viewpoints``, the tree tiles
``trees``, the change report ``lod2_reference`` and the traffic-change layer ``roads`` plus
``analysis.traffic_change``. Their assets then finish with nothing computed; the run summary,
``index.html``, ``release.json`` and ``catalog.jsonld`` list them as "not computed: needs <role>"
(:func:`not_computed`), so that a missing layer is never mistaken for a failed or forgotten one.

Nothing here imports dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings


@dataclass(frozen=True)
class Requirement:
    """An optional output and what it needs.

    ``asset`` is the asset key as a path string (``analysis/noise``), or None for an output that is
    part of another asset (the change report is written by ``buildings/model``). ``roles`` are the
    source roles it needs, ``setting`` a deployment key it needs besides them.
    """

    name: str
    asset: str | None
    roles: tuple[str, ...]
    title_de: str
    title_en: str
    setting: str | None = None


#: the optional outputs of the city's pipeline (everything else is computed in every deployment)
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("noise", "analysis/noise", ("roads",), "Straßenverkehrslärm (RLS-19)", "road traffic noise (RLS-19)"),
    Requirement("traffic_change", "analysis/traffic_change", ("roads",), "Lärmänderung durch die Verkehrsänderung",
                "noise change of the traffic change", setting="analysis.traffic_change"),
    Requirement("flood", "analysis/flood", ("flood_zones",), "Überflutung (Wassertiefen, betroffene Gebäude)",
                "flood exposure (water depths, affected buildings)"),
    Requirement("sightlines", "analysis/sightlines", ("viewpoints",), "Sichtachsen und Sichtfelder",
                "sight lines and viewsheds"),
    Requirement("tree_tiles", "publish/tree_tiles", ("trees",), "Bäume (3D Tiles)", "trees (3D Tiles)"),
    Requirement("changes", None, ("lod2_reference",), "Änderungen gegenüber dem amtlichen LoD2",
                "changes against the official LoD2"),
)


@dataclass(frozen=True)
class NotComputed:
    """An output the deployment does not compute, and what it would need."""

    name: str
    asset: str | None
    needs: tuple[str, ...]  # roles (``sources.<role>``) and settings that are missing
    title_de: str
    title_en: str

    @property
    def text_de(self) -> str:
        return f"{self.title_de}: nicht berechnet, benötigt {_join(self.needs, 'und')}"

    @property
    def text_en(self) -> str:
        return f"{self.title_en}: not computed, needs {_join(self.needs, 'and')}"

    def to_dict(self) -> dict:
        return {"name": self.name, "asset": self.asset, "needs": list(self.needs),
                "text": {"de": self.text_de, "en": self.text_en}}


def _join(items: tuple[str, ...], word: str) -> str:
    items = tuple(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def _missing(settings: Settings, req: Requirement) -> tuple[str, ...]:
    missing = [f"sources.{r}" for r in req.roles if settings.source(r) is None]
    if req.setting == "analysis.traffic_change" and settings.analysis.traffic_change is None:
        missing.append(req.setting)
    return tuple(missing)


def not_computed(settings: Settings) -> list[NotComputed]:
    """The optional outputs this deployment does not compute, each with what it needs."""
    out = []
    for req in REQUIREMENTS:
        needs = _missing(settings, req)
        if needs:
            out.append(NotComputed(req.name, req.asset, needs, req.title_de, req.title_en))
    return out


def not_configured_assets(settings: Settings) -> dict[str, NotComputed]:
    """``{asset key path: NotComputed}`` of the assets that compute nothing in this deployment."""
    return {n.asset: n for n in not_computed(settings) if n.asset}
