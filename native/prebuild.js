#!/usr/bin/env node
// `npm run prebuild`: builds the addon (node-gyp, N-API: one binary for every Node version) and puts it
// where lib/binding.ts looks first, prebuilds/<platform>-<arch>/redpp.napi[.musl].node, so that the
// package installs without a compiler or an install script. Run it on each platform to ship (the
// package takes every prebuilds/ folder present). `--copy` skips the build and copies the last one
// (what `npm pack` does through prepack, after `npm ci` has built it).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'redpp.node');
if (!process.argv.includes('--copy') || !fs.existsSync(built)) {
  // node-gyp is on PATH inside npm scripts (npm's own): run this as `npm run prebuild`.
  execFileSync(process.platform === 'win32' ? 'node-gyp.cmd' : 'node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
}
const musl = process.platform === 'linux' && process.report.getReport().header.glibcVersionRuntime === undefined;
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const target = path.join(dir, `redpp.napi${musl ? '.musl' : ''}.node`);
// Copied under a temporary name and renamed: a process loading the addon meanwhile sees a whole file.
const temp = `${target}.${process.pid}.tmp`;
fs.copyFileSync(built, temp);
fs.renameSync(temp, target);
console.log(`prebuild: ${path.relative(root, target)} (${fs.statSync(target).size} bytes)`);
