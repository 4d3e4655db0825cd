/**
 * Writes the files generated from the protocol's one definition (src/protocol/schema.ts):
 * protocol.schema.json for the Python runner and checks.generated.ts for the TypeScript decoder;
 * and the table of error codes in docs/errors.md from the registry (src/error-codes.ts).
 * `npm run protocol`; a test fails when either is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_VERSION } from '../src/protocol/version.js';
import { renderChecks, renderJsonSchema } from '../src/protocol/codegen.js';
import { renderErrorTable, withErrorTable } from './error-table.js';

for (const [name, text] of [
  ['protocol.schema.json', renderJsonSchema(PROTOCOL_VERSION)],
  ['checks.generated.ts', renderChecks()],
] as const) {
  const file = fileURLToPath(new URL(`../src/protocol/${name}`, import.meta.url));
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
}

// The table of error codes in the docs, from the one registry.
const errorsPage = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
writeFileSync(errorsPage, withErrorTable(readFileSync(errorsPage, 'utf8'), renderErrorTable()));
console.log(`wrote ${errorsPage}`);
