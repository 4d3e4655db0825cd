/**
 * Writes the files generated from the protocol's one definition (src/protocol/schema.ts):
 * protocol.schema.json for the Python runner and checks.generated.ts for the TypeScript decoder.
 * `npm run protocol`; a test fails when either is out of date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_VERSION } from '../src/protocol/version.js';
import { renderChecks, renderJsonSchema } from '../src/protocol/codegen.js';

for (const [name, text] of [
  ['protocol.schema.json', renderJsonSchema(PROTOCOL_VERSION)],
  ['checks.generated.ts', renderChecks()],
] as const) {
  const file = fileURLToPath(new URL(`../src/protocol/${name}`, import.meta.url));
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
}
