// Validate GLB files with the Khronos glTF-Validator (npm gltf-validator).
// Usage: node validate_gltf.mjs FILE.glb [...]
// Prints one JSON object: {"results": [{"path", "numErrors", "numWarnings", "numInfos", "messages"}]}
import { readFile } from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

const files = process.argv.slice(2);
const results = [];
for (const file of files) {
  const data = new Uint8Array(await readFile(file));
  try {
    const report = await validator.validateBytes(data, {
      uri: path.basename(file),
      maxIssues: 200,
      externalResourceFunction: (uri) =>
        readFile(path.resolve(path.dirname(file), decodeURIComponent(uri))).then((b) => new Uint8Array(b)),
    });
    results.push({
      path: file,
      numErrors: report.issues.numErrors,
      numWarnings: report.issues.numWarnings,
      numInfos: report.issues.numInfos,
      messages: report.issues.messages.filter((m) => m.severity <= 1),
      validatorVersion: report.validatorVersion,
    });
  } catch (err) {
    results.push({ path: file, numErrors: 1, numWarnings: 0, numInfos: 0,
      messages: [{ code: "VALIDATOR_EXCEPTION", message: String(err), severity: 0 }] });
  }
}
process.stdout.write(JSON.stringify({ results }));
