import { readFileSync } from 'node:fs';

/** rowcast's version, from package.json (one level up from src/, two from dist/src/). */
export const VERSION: string = readVersion();

function readVersion(): string {
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'rowcast' && pkg.version) return pkg.version;
    } catch {
      // try the next one
    }
  }
  return '0.0.0';
}
