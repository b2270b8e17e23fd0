/**
 * The Chromium the browser tests and the report-page bench drive: REDPP_CHROMIUM (as .ci/run sets it:
 * then a missing browser fails rather than skips), else the first of the usual paths that exists.
 */
import * as fs from 'node:fs';

export const CHROMIUM: string | undefined =
  process.env.REDPP_CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => fs.existsSync(p));
