"""What a release holds, part by part: fresh, unchanged, carried over, failed or not computed.

A *part* is one asset for one tile (or the whole city for unpartitioned assets), e.g.
``staging/point_cloud[32_682_5645]`` or ``analysis/building_values``. Its state says how the result
that goes into a release came about:

``fresh``
    built in this refresh;
``current``
    built in an earlier refresh and still up to date (nothing it depends on changed);
``carried_over``
    out of date, but an earlier result is used: its own step failed in this refresh, an input failed
    or was rebuilt after it, or its code changed (``built`` is the date of the result used);
``degraded``
    built in this refresh, but from an input that is carried over or failed (e.g. the city's
    building model without the buildings of a tile whose LiDAR could not be read);
``failed``
    no result at all (its step failed and it was never built, or an input is missing);
``not_configured``
    the deployment does not compute it ("not computed: needs <role>", :mod:`citymodel.requirements`).

A release is made only when no part is ``carried_over``, ``degraded`` or ``failed``
(:meth:`ReleaseContents.refusals`), unless the deployment file allows it: ``publish.allow_carry_over``
names assets whose old results may be published (and parts degraded only by those),
``publish.allow_gaps: true`` allows any gap. A release with gaps says which parts are
missing or old, in words (German first), in ``index.html``, ``release.json`` and ``catalog.jsonld``.
Besides the parts, a release is refused when it would hold fewer buildings or points than
``publish.min_buildings`` / ``publish.min_points``, or when the share of tiles without a failed part
is below ``publish.min_coverage_share``.

The states are computed from the Dagster instance by :mod:`pipelines.run_state`; this module only
holds them, decides and words them. Nothing here imports dagster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..requirements import NotComputed
from .provenance import iso_utc

FRESH, CURRENT, CARRIED_OVER, DEGRADED, FAILED, NOT_CONFIGURED = (
    "fresh", "current", "carried_over", "degraded", "failed", "not_configured")
STATES = (FRESH, CURRENT, CARRIED_OVER, DEGRADED, FAILED, NOT_CONFIGURED)
#: states that never block a release
OK_STATES = frozenset({FRESH, CURRENT, NOT_CONFIGURED})
GAP_STATES = frozenset({CARRIED_OVER, DEGRADED, FAILED})

#: why a part is not current (``Part.why``)
WHY_ERROR, WHY_INPUT, WHY_OUTDATED, WHY_CODE, WHY_RUNNING, WHY_NEVER = (
    "error", "input", "outdated", "code_version", "in_progress", "never_built")


def _day(dt: datetime | None) -> str:
    return iso_utc(dt) if dt is not None else "?"


@dataclass(frozen=True)
class Part:
    """The state of one asset for one tile (``tile=None``: the whole city).

    ``why`` (one of the ``WHY_*`` codes) and ``detail`` say why a part is carried over or failed:
    the step's own error message (``error``), the input that is not current (``input``: ``cause`` is
    that input's label, ``detail`` the root error), an input rebuilt after it (``outdated``), a
    changed code version, a run still in progress, or never built. ``cause`` names the root part
    whose failure the state follows from (for ``error``: the part itself); ``root_asset`` and
    ``root_state`` are that part's asset and state (a gap that follows only from gaps the
    deployment allows is allowed too).
    """

    asset: str
    tile: str | None
    state: str
    built: datetime | None = None
    why: str | None = None
    detail: str = ""
    cause: str | None = None
    needs: tuple[str, ...] = ()
    root_asset: str | None = None
    root_state: str | None = None

    @property
    def label(self) -> str:
        return f"{self.asset}[{self.tile}]" if self.tile else self.asset

    def reason(self, lang: str = "en") -> str:
        """Why the part is not current, in words (``""`` when it is)."""
        de = lang == "de"
        w, d, c = self.why, self.detail, self.cause
        if self.state == NOT_CONFIGURED:
            return ("benötigt " if de else "needs ") + (" und " if de else " and ").join(self.needs)
        if w == WHY_ERROR:
            return (f"Schritt fehlgeschlagen: {d}" if de else f"its step failed: {d}")
        if w == WHY_INPUT:
            return (f"Eingang {c} ist nicht aktuell: {d}" if de else f"input {c} is not current: {d}")
        if w == WHY_OUTDATED:
            return (f"Eingang {c} wurde danach neu erstellt" if de else f"input {c} was rebuilt after it")
        if w == WHY_CODE:
            return (f"mit anderer Code-Version erstellt ({d})" if de else f"made by another code version ({d})")
        if w == WHY_RUNNING:
            return (f"wird gerade neu erstellt ({d})" if de else f"being rebuilt ({d})")
        if w == WHY_NEVER:
            return "noch nie erstellt" if de else "never built"
        return d

    def text(self, lang: str = "en") -> str:
        """The state in words, e.g. ``carried over from 2026-11-20T02:14:03Z: its step failed: ...``."""
        de = lang == "de"
        if self.state == FRESH:
            return f"in diesem Lauf erstellt ({_day(self.built)})" if de else f"built in this refresh ({_day(self.built)})"
        if self.state == CURRENT:
            return f"unverändert seit {_day(self.built)}" if de else f"unchanged since {_day(self.built)}"
        if self.state == CARRIED_OVER:
            return (f"übernommen aus dem Lauf vom {_day(self.built)}: {self.reason('de')}" if de
                    else f"carried over from the run of {_day(self.built)}: {self.reason('en')}")
        if self.state == DEGRADED:
            return (f"in diesem Lauf erstellt ({_day(self.built)}), aber unvollständig: {self.reason('de')}" if de
                    else f"built in this refresh ({_day(self.built)}) but incomplete: {self.reason('en')}")
        if self.state == FAILED:
            return f"fehlt: {self.reason('de')}" if de else f"missing: {self.reason('en')}"
        return f"nicht berechnet: {self.reason('de')}" if de else f"not computed: {self.reason('en')}"

    def to_dict(self) -> dict:
        return {"asset": self.asset, "tile": self.tile, "state": self.state,
                "built": iso_utc(self.built) if self.built else None, "why": self.why, "cause": self.cause,
                "text": {"de": self.text("de"), "en": self.text("en")}}


def _matches(asset: str, names: Iterable[str]) -> bool:
    """``asset`` (``publish/pointcloud_tiles``) is named by its full path or its last part."""
    last = asset.rsplit("/", 1)[-1]
    return any(n in (asset, last) for n in names)


@dataclass(frozen=True)
class PublishPolicy:
    """What the deployment allows a release to hold (``publish.*`` of the deployment file)."""

    allow_carry_over: tuple[str, ...] = ()
    allow_gaps: bool = False
    min_buildings: int = 1
    min_points: int = 1
    min_coverage_share: float = 1.0

    @classmethod
    def from_settings(cls, publish) -> PublishPolicy:
        return cls(tuple(publish.allow_carry_over), bool(publish.allow_gaps), int(publish.min_buildings),
                   int(publish.min_points), float(publish.min_coverage_share))

    def allows(self, part: Part) -> bool:
        """A part may be published: it is current, or its gap is allowed by the deployment (any gap
        with ``allow_gaps``; an old result of an asset named in ``allow_carry_over``, and parts that
        are carried over or degraded only because of such a result)."""
        if part.state in OK_STATES or self.allow_gaps:
            return True
        if part.state == FAILED:
            return False
        root_asset = part.root_asset or part.asset
        root_state = part.root_state or part.state
        return root_state == CARRIED_OVER and _matches(root_asset, self.allow_carry_over)


@dataclass
class ReleaseContents:
    """The parts of a release and what the deployment does not compute.

    Parameters
    ----------
    parts : list of Part
        Every part upstream of the release.
    not_computed : list of NotComputed
        Optional outputs the deployment does not compute (:func:`citymodel.requirements.not_computed`).
    refresh_id : str, optional
        The refresh the release is made in (the ``citymodel/refresh`` tag of its runs).
    tiles : sequence of str
        The configured tiles (for the coverage share).
    buildings, points : int, optional
        Buildings and LiDAR points that go into the release (None: not counted).
    dataset_assets : mapping
        ``{release dataset identifier: asset key paths it is made from}``: a dataset has a gap when
        a part of one of its assets has one.
    """

    parts: list[Part] = field(default_factory=list)
    not_computed: list[NotComputed] = field(default_factory=list)
    refresh_id: str | None = None
    tiles: Sequence[str] = ()
    buildings: int | None = None
    points: int | None = None
    dataset_assets: Mapping[str, Sequence[str]] = field(default_factory=dict)

    # -- facts --------------------------------------------------------------------------------------
    @property
    def gaps(self) -> list[Part]:
        """The parts that are carried over or failed, sorted by asset and tile."""
        return sorted((p for p in self.parts if p.state in GAP_STATES), key=lambda p: (p.asset, p.tile or ""))

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        for p in self.parts:
            out[p.state] += 1
        return out

    @property
    def coverage_share(self) -> float:
        """Share of the configured tiles none of whose parts failed (1.0 without tiles)."""
        if not self.tiles:
            return 1.0
        failed = {p.tile for p in self.parts if p.state == FAILED and p.tile}
        return (len(self.tiles) - len(failed & set(self.tiles))) / len(self.tiles)

    @property
    def status(self) -> str:
        """``complete`` (every part current) or ``gaps``."""
        return "gaps" if self.gaps else "complete"

    # -- the decision -------------------------------------------------------------------------------
    def refusals(self, policy: PublishPolicy) -> list[str]:
        """Why this release must not be published under ``policy`` (empty: it may be).

        One line per blocking part (its label, state and reason) and per failed gate (buildings,
        points, coverage share), each naming the deployment key that would allow it.
        """
        out = []
        for p in self.gaps:
            if not policy.allows(p):
                root_asset, root_state = p.root_asset or p.asset, p.root_state or p.state
                key = ("publish.allow_carry_over: [" + root_asset.rsplit("/", 1)[-1] + "]"
                       if root_state == CARRIED_OVER and p.state != FAILED else "publish.allow_gaps: true")
                out.append(f"{p.label} {p.text('en')} (allowed only with {key})")
        if self.buildings is not None and self.buildings < policy.min_buildings:
            out.append(f"the release would hold {self.buildings} buildings, fewer than publish.min_buildings = "
                       f"{policy.min_buildings}")
        if self.points is not None and self.points < policy.min_points:
            out.append(f"the release would hold {self.points} LiDAR points, fewer than publish.min_points = "
                       f"{policy.min_points}")
        share = self.coverage_share
        if share < policy.min_coverage_share - 1e-12:
            out.append(f"only {share:.0%} of the {len(self.tiles)} tiles are complete, less than "
                       f"publish.min_coverage_share = {policy.min_coverage_share:g}")
        return out

    # -- words --------------------------------------------------------------------------------------
    def summary(self, lang: str = "en") -> str:
        """One sentence: complete, or how many parts are missing or old."""
        g = self.gaps
        de = lang == "de"
        if not g:
            return ("Vollständig: alle Teile dieser Veröffentlichung sind aktuell." if de
                    else "Complete: every part of this release is current.")
        old = sum(1 for p in g if p.state == CARRIED_OVER)
        partial = sum(1 for p in g if p.state == DEGRADED)
        missing = len(g) - old - partial
        if de:
            return (f"Unvollständig: {missing} Teil(e) fehlen, {old} Teil(e) sind veraltet (aus einem früheren "
                    f"Lauf übernommen), {partial} Teil(e) wurden aus unvollständigen Eingängen erstellt.")
        return (f"Incomplete: {missing} part(s) missing, {old} part(s) old (carried over from an earlier run), "
                f"{partial} part(s) built from incomplete inputs.")

    def lines(self, lang: str = "en") -> list[str]:
        """The summary, one line per gap and one per output not computed."""
        out = [self.summary(lang)]
        out += [f"{p.label}: {p.text(lang)}" for p in self.gaps]
        out += [n.text_de if lang == "de" else n.text_en for n in self.not_computed]
        return out

    def dataset_gaps(self, dataset: str) -> list[Part]:
        """The gaps of the parts a release dataset is made from."""
        assets = set(self.dataset_assets.get(dataset, ()))
        return [p for p in self.gaps if p.asset in assets]

    def dataset_note(self, dataset: str, lang: str = "en") -> str | None:
        """What is missing or old in a dataset, in words (None when it is complete)."""
        g = self.dataset_gaps(dataset)
        if not g:
            return None
        head = "Unvollständig" if lang == "de" else "Incomplete"
        return head + ": " + "; ".join(f"{p.label} {p.text(lang)}" for p in g)

    # -- records ------------------------------------------------------------------------------------
    def to_dict(self, policy: PublishPolicy | None = None) -> dict:
        """The ``contents`` of ``release.json``."""
        d = {
            "status": self.status, "refresh": self.refresh_id,
            "summary": {"de": self.summary("de"), "en": self.summary("en")},
            "counts": self.counts(),
            "gaps": [p.to_dict() for p in self.gaps],
            "not_computed": [n.to_dict() for n in self.not_computed],
            "buildings": self.buildings, "points": self.points, "tiles": len(self.tiles),
            "coverage_share": round(self.coverage_share, 4),
            "datasets": {ds: {"de": self.dataset_note(ds, "de"), "en": self.dataset_note(ds, "en")}
                         for ds in sorted(self.dataset_assets) if self.dataset_gaps(ds)},
            "parts": [p.to_dict() for p in sorted(self.parts, key=lambda p: (p.asset, p.tile or ""))],
        }
        if policy is not None:
            d["policy"] = {"allow_carry_over": list(policy.allow_carry_over), "allow_gaps": policy.allow_gaps,
                           "min_buildings": policy.min_buildings, "min_points": policy.min_points,
                           "min_coverage_share": policy.min_coverage_share}
        return d

    def digest_items(self) -> list[list]:
        """What the content digest holds of the contents: the gaps and the outputs not computed
        (no dates), so that the same files with other gaps make a new release."""
        return ([[p.asset, p.tile, p.state, p.cause] for p in self.gaps]
                + [[n.name, list(n.needs)] for n in self.not_computed])
