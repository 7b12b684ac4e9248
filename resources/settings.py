"""The deployment settings as a Dagster resource, read at run time (never at import)."""

from __future__ import annotations

import os
from functools import cached_property

import dagster as dg

from citymodel.config import ENV_VAR, Settings, load_config


class SettingsResource(dg.ConfigurableResource):
    """Loads the deployment file named by ``config_path``, else ``$CITYMODEL_CONFIG``, else the
    bundled sample city's file. ``output_dir`` overrides the file's output folder (tests)."""

    config_path: str | None = None
    output_dir: str | None = None

    def load(self) -> Settings:
        return _load(self.config_path, self.output_dir)


def _load(config_path: str | None, output_dir: str | None) -> Settings:
    path = config_path or os.environ.get(ENV_VAR)
    if output_dir:
        old = os.environ.get("CITYMODEL_OUTPUT_DIR")
        os.environ["CITYMODEL_OUTPUT_DIR"] = output_dir
        try:
            return load_config(path)
        finally:
            if old is None:
                os.environ.pop("CITYMODEL_OUTPUT_DIR", None)
            else:
                os.environ["CITYMODEL_OUTPUT_DIR"] = old
    return load_config(path)
