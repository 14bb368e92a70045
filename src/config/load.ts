import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isNode, isScalar, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

/** A config file that cannot be used; the message names the file, line, column and key. */
export class ConfigError extends Error {
  readonly code = 'MAILTAP_ERR_CONFIG';
  readonly file: string;

  constructor(file: string, message: string) {
    super(message);
    this.name = 'ConfigError';
    this.file = file;
  }
}

/** Returns the configuration with every default filled in, for a run without a file. */
export function defaultConfig(): Config {
  return configSchema.parse({});
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('').replace(/^\./, '') || '(top level)';
}

function keyNode(doc: Document, path: unknown[]): unknown {
  if (path.length === 0) return undefined;
  const parent = doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  return parent.items.find((pair) => isScalar(pair.key) && pair.key.value === path[path.length - 1])?.key;
}

/** Finds the line and column of the deepest node on the path that exists in the document. */
function locate(doc: Document, lines: LineCounter, path: readonly PropertyKey[], atKey = false): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const prefix = path.slice(0, depth) as unknown[];
    // A key that has no value node ("key:" alone) still has a key node in its map.
    const node = atKey && depth === path.length ? keyNode(doc, prefix) : (doc.getIn(prefix, true) ?? keyNode(doc, prefix));
    if (isNode(node) && node.range) {
      const { line, col } = lines.linePos(node.range[0]);
      return `${line}:${col}`;
    }
  }
  return '1:1';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; check the spelling against appliance/mailtap.yaml`;
  }
  return issue.message;
}

/** Maximum nesting of lists and maps. The shipped config nests 4 levels. */
const MAX_DEPTH = 64;
/** Maximum aliases resolved while converting the document. A config needs a handful. */
const MAX_ALIAS_COUNT = 100;
/** Maximum YAML syntax errors listed, because one broken bracket can cause hundreds. */
const MAX_SYNTAX_ERRORS = 3;
/** Maximum length of an error detail quoted from the YAML parser. */
const MAX_DETAIL_CHARS = 200;

function clip(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > MAX_DETAIL_CHARS ? `${line.slice(0, MAX_DETAIL_CHARS)}...` : line;
}

/**
 * Drops null values, because a key written without a value ("relays:" alone) means "not set".
 * An alias can make the converted document refer to itself (`a: &x [*x]`), so the walk keeps
 * the containers on its current path and stops at a cycle or past MAX_DEPTH with a ConfigError.
 */
function withoutNulls(value: unknown, fail: (path: PropertyKey[], reason: string) => never): unknown {
  const path: PropertyKey[] = [];
  const open = new Set<object>();
  const walk = (item: unknown): unknown => {
    if (item === null) return undefined;
    if (typeof item !== 'object') return item;
    if (open.has(item)) fail(path, 'an alias refers to the node that contains it');
    if (path.length >= MAX_DEPTH) fail(path, `nested deeper than ${MAX_DEPTH} levels`);
    open.add(item);
    let result: unknown;
    if (Array.isArray(item)) {
      result = item.map((element, index) => {
        path.push(index);
        const converted = walk(element);
        path.pop();
        return converted;
      });
    } else {
      result = Object.fromEntries(
        Object.entries(item).map(([key, element]) => {
          path.push(key);
          const converted = walk(element);
          path.pop();
          return [key, converted];
        }),
      );
    }
    open.delete(item);
    return result;
  };
  return walk(value);
}

/** Parses and validates YAML text; file is used in messages only. Throws ConfigError. */
export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // The parser reports running out of stack as an ordinary error, often followed by one
    // error per unclosed bracket, so only the first is shown.
    const overflow = doc.errors.find((error) => error.message.startsWith('Maximum call stack size exceeded'));
    const listed = overflow !== undefined ? [overflow] : doc.errors.slice(0, MAX_SYNTAX_ERRORS);
    const messages = listed.map((error) => {
      const at = lines.linePos(error.pos[0]);
      const detail = error === overflow ? 'lists or maps nested too deeply' : clip(error.message);
      return `${file}:${at.line}:${at.col}: invalid YAML: ${detail}`;
    });
    if (doc.errors.length > listed.length) messages.push(`${file}: ${doc.errors.length - listed.length} more YAML errors not shown`);
    throw new ConfigError(file, messages.join('\n'));
  }
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // The yaml package throws a ReferenceError for an alias bomb ("billion laughs") and can
    // run out of stack on a document nested too deeply.
    throw new ConfigError(file, `${file}: invalid YAML: ${clip((error as Error).message)}`);
  }
  const fail = (path: PropertyKey[], reason: string): never => {
    throw new ConfigError(file, `${file}:${locate(doc, lines, path)}: ${keyPath(path)}: ${reason}`);
  };
  const raw: unknown = withoutNulls(js, fail) ?? {};
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    // An unknown key is reported at the key itself, so the line points at the typo.
    const unknownKey = issue.code === 'unrecognized_keys';
    const path = unknownKey ? [...issue.path, issue.keys[0] as string] : issue.path;
    return `${file}:${locate(doc, lines, path, unknownKey)}: ${keyPath(path)}: ${describeIssue(issue)}`;
  });
  throw new ConfigError(file, messages.join('\n'));
}

/** Reads and validates a config file. Throws ConfigError for a missing, unreadable or invalid file. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new ConfigError(file, `${file}: cannot read the config: ${reason}`);
  }
  return parseConfig(text, file);
}
