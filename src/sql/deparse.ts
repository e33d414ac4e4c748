// Expression text for the catalog (DEFAULT, CHECK) and EXPLAIN: the parse tree printed back
// as SQL by pgsql-deparser (written for libpg-query's tree), on one line.

import { deparseSync as deparseTree } from 'pgsql-deparser';
import type { Node } from './expr.js';

export function deparseSync(node: Node): string {
  return deparseTree(node, { pretty: false });
}
