// trim.mjs writes the price table Tokfence embeds from an unpacked release
// of the npm package @pydantic/genai-prices. Run by update.sh:
//
//   node trim.mjs PACKAGE_DIR OUT_DIR VERSION PUBLISHED INTEGRITY
//
// It takes the data the package bundles (the format of genai-prices'
// prices/new_data/v2/data.json), keeps the providers Tokfence knows and
// the providers they fall back to, drops the two members Tokfence does not
// read (model descriptions and usage extractors), and writes
// OUT_DIR/genai-prices.json and OUT_DIR/source.json.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkgDir, outDir, version, published, integrity] = process.argv.slice(2);
if (!integrity) {
  console.error('usage: node trim.mjs PACKAGE_DIR OUT_DIR VERSION PUBLISHED INTEGRITY');
  process.exit(2);
}

// The genai-prices ids of Tokfence's built-in providers; keep in step with
// genaiProviderIDs in daemon/genaiprices.go (a test checks it).
const known = ['openai', 'anthropic', 'google', 'mistral', 'groq', 'openrouter', 'deepseek', 'x-ai', 'together', 'azure'];

const mod = await import(pathToFileURL(join(pkgDir, 'dist', 'index.js')).href);
const all = await mod.waitForUpdate(); // the bundled data until an update is configured
if (!Array.isArray(all)) throw new Error('waitForUpdate() did not return the bundled provider list');

const byId = new Map(all.map((p) => [p.id, p]));
const keep = new Set();
const visit = (id) => {
  if (keep.has(id)) return;
  if (!byId.has(id)) throw new Error(`provider ${id} is not in genai-prices ${version}`);
  keep.add(id);
  for (const f of byId.get(id).fallback_model_providers ?? []) if (byId.has(f)) visit(f);
};
known.forEach(visit);

const out = all
  .filter((p) => keep.has(p.id))
  .map(({ extractors, ...p }) => ({ ...p, models: p.models.map(({ description, ...m }) => m) }));
writeFileSync(join(outDir, 'genai-prices.json'), JSON.stringify(out, null, 1) + '\n');

const source = {
  _note: 'genai-prices.json is the price data bundled in this npm release, trimmed by tools/prices/update.sh to these providers (those Tokfence knows and their fallbacks), without model descriptions or usage extractors. MIT licence: see LICENSE beside it.',
  package: '@pydantic/genai-prices',
  version,
  published,
  url: `https://www.npmjs.com/package/@pydantic/genai-prices/v/${version}`,
  repository: 'https://github.com/pydantic/genai-prices',
  license: 'MIT',
  integrity,
  providers: out.map((p) => p.id),
};
writeFileSync(join(outDir, 'source.json'), JSON.stringify(source, null, 2) + '\n');
console.log(`genai-prices ${version} (${published}): ${out.length} providers, ${out.reduce((n, p) => n + p.models.length, 0)} models`);
