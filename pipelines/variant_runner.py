"""Assess the planning variants that need it, in this process (``citymodel run``, ``citymodel variant``).

The same decision as the ``variant_rebase`` sensor (:func:`citymodel.variants.publish.stale_variants`):
every current variant version that is not yet published against the city's current release. Each
is one run of the ``variant_assess`` job; a failing variant fails alone and never touches the city.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from citymodel.config import Settings

from .partitions import sync_variants
from .refresh_runner import QUIET, failure_messages


@dataclass
class VariantOutcome:
    assessed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def assess(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[str], quiet: bool = True,
           log=print) -> VariantOutcome:
    """Run ``variant_assess`` for each partition key (registered first); failures are collected."""
    out = VariantOutcome()
    if not keys:
        return out
    sync_variants(instance, keys)
    job = defs.resolve_job_def("variant_assess")
    for key in keys:
        log(f"variant {key}")
        res = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False,
                                     run_config=QUIET if quiet else None, tags={"citymodel/variant": key})
        if res.success:
            out.assessed.append(key)
        else:
            out.failed.append((key, failure_messages(res)))
            log(f"  FAILED: {out.failed[-1][1]}")
    return out


def assess_pending(defs: dg.Definitions, instance: dg.DagsterInstance, settings: Settings, quiet: bool = True,
                   log=print) -> VariantOutcome:
    """Assess every current variant version not yet published against the current city release."""
    from citymodel.variants.publish import stale_variants

    return assess(defs, instance, [k for k, _ in stale_variants(settings)], quiet=quiet, log=log)
