// Validate one glTF/GLB read from stdin with the Khronos glTF Validator; print the JSON report.
// Usage: node gltf_validate.mjs <node_modules dir> < asset.glb
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const nodeModules = process.argv[2];
const require = createRequire(join(nodeModules, "noop.js"));
const validator = require("gltf-validator");

const bytes = new Uint8Array(readFileSync(0));
try {
  const report = await validator.validateBytes(bytes, { maxIssues: 200 });
  process.stdout.write(JSON.stringify(report));
} catch (err) {
  // Rejection means the input is not glTF at all (the validator could not even detect a format).
  process.stderr.write(String(err));
  process.exit(2);
}
