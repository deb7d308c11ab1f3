/**
 * The documentation's links: every relative link and image in README.md and
 * docs/**\/*.md resolves to a file in this repository, every `#anchor` (in
 * the page or `file.md#anchor`) names a heading of its target by GitHub's
 * slug rules, no link leaves the repository, and the README stays short.
 * Links with a scheme (`https:`, `mailto:`) are not files and are not
 * checked here. Needs no database.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README_MAX_BYTES = 15_360;

/** README.md and every Markdown file under docs/, as paths relative to the repository root. */
function documentationFiles(): string[] {
  const files = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const relative = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(relative);
      else if (entry.name.endsWith('.md')) files.push(relative);
    }
  };
  if (existsSync(path.join(ROOT, 'docs'))) walk('docs');
  return files;
}

/** The lines of a Markdown text outside fenced code blocks (fence lines and their contents become empty). */
function proseLines(markdown: string): string[] {
  let fence: string | null = null;
  return markdown.split('\n').map((line) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === null && marker !== undefined) {
      fence = marker;
      return '';
    }
    if (fence !== null) {
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = null;
      return '';
    }
    return line;
  });
}

/** A line with its inline code spans blanked out (a link inside backticks is not a link). */
function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length));
}

/**
 * GitHub's heading anchor: the heading's text, lower-cased, without
 * punctuation or symbols other than `-` and `_`, spaces turned into `-`.
 *
 * @example
 * slug('`since` and `resumed`') // 'since-and-resumed'
 */
function slug(heading: string): string {
  const text = heading
    .replace(/!\[[^\]]*\]\([^)]*\)/g, '') // images
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // links: their text
    .replace(/<[^>]+>/g, ''); // HTML tags
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings (ATX and setext), with GitHub's `-1`, `-2` for repeats. */
function anchorsOf(markdown: string): Set<string> {
  const lines = proseLines(markdown);
  const headings: string[] = [];
  lines.forEach((line, i) => {
    const atx = /^ {0,3}#{1,6}(?:\s+(.*?))?\s*$/.exec(line);
    if (atx) {
      headings.push((atx[1] ?? '').replace(/\s+#+$/, ''));
      return;
    }
    const previous = lines[i - 1];
    if (/^ {0,3}(=+|-+)\s*$/.test(line) && previous !== undefined && /^ {0,3}[^\s#>|*+-]/.test(previous) && !/^ {0,3}\d+[.)]\s/.test(previous)) {
      headings.push(previous.trim());
    }
  });
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const heading of headings) {
    const base = slug(heading.trim());
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** One link of a Markdown file: where it points and the line it is on. */
interface Link {
  readonly target: string;
  readonly line: number;
}

/** Inline links and images, reference definitions, and `src`/`href` of HTML tags, outside code. */
function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  proseLines(markdown).forEach((raw, i) => {
    const line = withoutCodeSpans(raw);
    const add = (target: string | undefined) => {
      if (target !== undefined) links.push({ target, line: i + 1 });
    };
    // [text](target "title") and ![alt](target); the text may hold one level of brackets.
    for (const match of line.matchAll(/!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^()\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
      add(match[1]?.replace(/^<|>$/g, ''));
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*(\S+)/.exec(line);
    if (definition) add(definition[1]?.replace(/^<|>$/g, ''));
    for (const match of line.matchAll(/<(?:img|a|source)\b[^>]*?\s(?:src|href)\s*=\s*["']([^"']+)["']/gi)) add(match[1]);
  });
  return links;
}

/** What is wrong with one link of `file` (relative to the root), or null. */
function problemOf(file: string, link: Link, anchorCache: Map<string, Set<string>>): string | null {
  const where = `${file}:${link.line}: ${link.target}`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) return null; // a URL, not a file
  const hash = link.target.indexOf('#');
  const rawPath = hash === -1 ? link.target : link.target.slice(0, hash);
  const anchor = hash === -1 ? null : link.target.slice(hash + 1);
  let targetPath: string;
  try {
    targetPath = decodeURIComponent(rawPath);
  } catch {
    return `${where}: the path is not valid percent-encoding`;
  }
  // GitHub resolves a path starting with / from the repository root.
  const resolved = targetPath === '' ? path.join(ROOT, file) : targetPath.startsWith('/') ? path.join(ROOT, targetPath) : path.resolve(ROOT, path.dirname(file), targetPath);
  const relative = path.relative(ROOT, resolved);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return `${where}: points outside the repository`;
  if (!existsSync(resolved)) return `${where}: ${relative} does not exist`;
  if (anchor === null || anchor === '') return null;
  if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) return `${where}: an anchor into ${relative}, which is not a Markdown file`;
  let anchors = anchorCache.get(resolved);
  if (!anchors) {
    anchors = anchorsOf(readFileSync(resolved, 'utf8'));
    anchorCache.set(resolved, anchors);
  }
  let name: string;
  try {
    name = decodeURIComponent(anchor);
  } catch {
    return `${where}: the anchor is not valid percent-encoding`;
  }
  return anchors.has(name) ? null : `${where}: no heading of ${relative} has the anchor #${name}`;
}

test('slugs follow GitHub’s rules', (t) => {
  t.is(slug('Quick start'), 'quick-start');
  t.is(slug('`since` and `resumed`'), 'since-and-resumed');
  t.is(slug('Restarts, crashes and outages'), 'restarts-crashes-and-outages');
  t.is(slug('The /live protocol'), 'the-live-protocol');
  t.is(slug('MAX_FILTER_VALUES (and more)'), 'max_filter_values-and-more');
  t.is(slug('[Linked](somewhere.md) heading'), 'linked-heading');
  t.deepEqual([...anchorsOf('# A\n\n## A\n\nB\n---\n\n```\n# not a heading\n```\n')], ['a', 'a-1', 'b']);
});

test(`README.md is at most ${README_MAX_BYTES.toLocaleString('en')} bytes`, (t) => {
  const bytes = statSync(path.join(ROOT, 'README.md')).size;
  t.true(bytes <= README_MAX_BYTES, `README.md is ${bytes} bytes; move detail into docs/`);
});

test('every relative link and image in README.md and docs/ resolves, anchors included, inside the repository', (t) => {
  const files = documentationFiles();
  t.true(files.length > 1, 'no Markdown files under docs/');
  const anchorCache = new Map<string, Set<string>>();
  const problems: string[] = [];
  let checked = 0;
  for (const file of files) {
    for (const link of linksOf(readFileSync(path.join(ROOT, file), 'utf8'))) {
      checked++;
      const problem = problemOf(file, link, anchorCache);
      if (problem !== null) problems.push(problem);
    }
  }
  t.true(checked > 0, 'no links found: the link pattern is broken');
  t.deepEqual(problems, [], `broken links:\n${problems.join('\n')}`);
});
