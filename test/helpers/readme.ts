import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A fenced code block of a Markdown text: its info string (`sh`, `tsx`, …) and its text, ending with a newline. */
export interface CodeBlock {
  readonly lang: string;
  readonly code: string;
}

/**
 * The fenced code blocks (```) of a Markdown text, in order.
 *
 * @example
 * codeBlocks('a\n```sh\nnpm test\n```\n') // [{ lang: 'sh', code: 'npm test\n' }]
 */
export function codeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let open: { fence: string; lang: string; lines: string[] } | null = null;
  for (const line of markdown.split('\n')) {
    const marker = /^(`{3,})\s*([^`\s]*)/.exec(line);
    if (open === null) {
      if (marker) open = { fence: marker[1]!, lang: marker[2] ?? '', lines: [] };
    } else if (marker && line.trim() === marker[1] && marker[1]!.length >= open.fence.length) {
      blocks.push({ lang: open.lang, code: open.lines.map((l) => `${l}\n`).join('') });
      open = null;
    } else {
      open.lines.push(line);
    }
  }
  return blocks;
}

/** README.md as it is now. */
export function readme(): string {
  return readFileSync(path.join(ROOT, 'README.md'), 'utf8');
}

/** A file of the repository, by its path from the root. */
export function repoFile(relative: string): string {
  return readFileSync(path.join(ROOT, relative), 'utf8');
}

/**
 * The one line of the README's `sh` blocks that matches `pattern`, without
 * its trailing `# comment`; throws (naming the pattern) unless there is
 * exactly one, so a README that lost or doubled the command fails loudly.
 */
export function readmeCommand(pattern: RegExp): string {
  const lines = codeBlocks(readme())
    .filter((block) => block.lang === 'sh')
    .flatMap((block) => block.code.split('\n'))
    .filter((line) => pattern.test(line));
  if (lines.length !== 1) throw new Error(`the README should have exactly one command matching ${pattern}; it has ${lines.length}: ${JSON.stringify(lines)}`);
  return lines[0]!.replace(/\s+#.*$/, '').trim();
}
