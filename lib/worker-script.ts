/**
 * Where a worker thread's script is. Workers always run compiled JavaScript: from the TypeScript
 * sources (tests) that is the script's twin in dist/ (`npm test` compiles first), since a worker that
 * loads TypeScript would compile all of lib/ again.
 */
import * as path from 'node:path';

import { packageRoot } from './binding';

/** The compiled script `name`.js beside the module `from` (its __filename). */
export function workerScript(from: string, name: string): string {
  const dir = path.dirname(from);
  if (path.extname(from) !== '.ts') return path.join(dir, `${name}.js`);
  return path.join(packageRoot, 'dist', path.relative(packageRoot, dir), `${name}.js`);
}
