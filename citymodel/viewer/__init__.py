"""The offline 3D viewer of a release (CesiumJS, plain ES modules in ``viewer/app``) and what it needs
from the Python side: its config with the declarative building styles (:mod:`.styles`,
:mod:`.viewconfig`), the terrain heightmap (:mod:`.terrain`), the files of the app and of CesiumJS
(:mod:`.bundle`), the portal layer configurations (:mod:`.portals`), the release parts
(:mod:`.parts`), a static server for ``citymodel serve`` (:mod:`.serve`) and headless Chromium for
checks (:mod:`.headless`). Nothing here imports Dagster."""
