// Read a tileset and all its content with CesiumGS 3d-tiles-tools (npm 3d-tiles-tools).
// Usage: node check_tileset.mjs DIR/tileset.json
// Traverses every tile (TilesetTraverser), resolves every content URI, detects its type
// (ContentDataTypeRegistry), parses GLB with the tools' glTF-Transform IO (which knows
// EXT_mesh_features / EXT_structural_metadata / EXT_mesh_gpu_instancing) and PNTS/B3DM/I3DM with
// TileFormats. Prints {"tiles", "contents", "types", "features", "errors": [...]} as JSON.
import { readFile } from "node:fs/promises";
import path from "node:path";
import {
  TilesetTraverser, ResourceResolvers, ContentDataTypeRegistry, TileFormats, GltfTransform,
} from "3d-tiles-tools";

const tilesetPath = process.argv[2];
const dir = path.dirname(path.resolve(tilesetPath));
const errors = [];
const types = {};
let tiles = 0, contents = 0, features = 0;
const tileset = JSON.parse(await readFile(tilesetPath, "utf8"));
const resolver = ResourceResolvers.createFileResourceResolver(dir);
const traverser = new TilesetTraverser(dir, resolver, { depthFirst: true, traverseExternalTilesets: true });
const io = await GltfTransform.getIO();
const pending = [];
await traverser.traverse(tileset, async (traversedTile) => {
  tiles += 1;
  for (const content of traversedTile.getFinalContents()) {
    contents += 1;
    // content URIs of external tilesets are relative to that tileset: use the tile's resolver
    pending.push({ uri: content.uri, resolver: traversedTile.getResourceResolver() });
  }
  return true;
});
for (const { uri, resolver: tileResolver } of pending) {
  const data = await (tileResolver ?? resolver).resolveData(uri);
  if (!data) { errors.push(`${uri}: cannot be resolved`); continue; }
  const type = await ContentDataTypeRegistry.findType(uri, data);
  types[type] = (types[type] || 0) + 1;
  try {
    if (type === "CONTENT_TYPE_GLB") {
      const doc = await io.readBinary(new Uint8Array(data));
      const root = doc.getRoot();
      if (root.listMeshes().length === 0) errors.push(`${uri}: glTF without mesh`);
      const meta = root.getExtension("EXT_structural_metadata");
      if (meta) {
        for (const table of meta.listPropertyTables()) features += table.getCount();
      }
    } else if (type === "CONTENT_TYPE_PNTS" || type === "CONTENT_TYPE_B3DM" || type === "CONTENT_TYPE_I3DM") {
      const tileData = TileFormats.readTileData(data);
      const n = tileData.featureTable.json.POINTS_LENGTH ?? tileData.featureTable.json.BATCH_LENGTH
        ?? tileData.featureTable.json.INSTANCES_LENGTH ?? 0;
      features += n;
      if (type === "CONTENT_TYPE_PNTS" && !(n > 0)) errors.push(`${uri}: PNTS without points`);
    } else if (type === "CONTENT_TYPE_TILESET") {
      // external tileset: traversed above
    } else {
      errors.push(`${uri}: unknown content type ${type}`);
    }
  } catch (err) {
    errors.push(`${uri}: ${err}`);
  }
}
process.stdout.write(JSON.stringify({ tiles, contents, types, features, errors }));
