// Which script files a run covers: every `*.test` under the corpus directory whose
// relative path (with `/` separators) matches one of the globs.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** The scored suites; evidence/ is SQLite-dialect and is left out (see the corpus README). */
export const DEFAULT_FILE_GLOBS = ['select1.test', 'select2.test', 'select3.test', 'random/**', 'index/**'];

/** `**` any number of path segments, `*` and `?` within one segment. A bare directory name means everything under it. */
export function globToPattern(glob: string): RegExp {
  let source = '';
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index]!;
    if (char === '*' && glob[index + 1] === '*') {
      index++;
      if (glob[index + 1] === '/') {
        index++;
        source += '(?:.*/)?';
      } else {
        source += '.*';
      }
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}(?:/.*)?$`);
}

export function listScriptFiles(directory: string): string[] {
  const files: string[] = [];
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(directory, relative), { withFileTypes: true })) {
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && entry.name.endsWith('.test')) files.push(child);
    }
  };
  walk('');
  return files.sort();
}

export function selectFiles(allFiles: readonly string[], globs: readonly string[]): string[] {
  const patterns = globs.map(globToPattern);
  return allFiles.filter((file) => patterns.some((pattern) => pattern.test(file)));
}
