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

/** Drops null values, because a key written without a value ("relays:" alone) means "not set". */
function withoutNulls(value: unknown): unknown {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as object).map(([key, item]) => [key, withoutNulls(item)]));
  }
  return value;
}

/** Parses and validates YAML text; file is used in messages only. Throws ConfigError. */
export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const messages = doc.errors.map((error) => {
      const at = lines.linePos(error.pos[0]);
      return `${file}:${at.line}:${at.col}: invalid YAML: ${error.message.split('\n')[0]}`;
    });
    throw new ConfigError(file, messages.join('\n'));
  }
  const raw: unknown = withoutNulls(doc.toJS()) ?? {};
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
