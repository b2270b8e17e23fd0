/**
 * Fonts and text layout for the OCR samples: real TrueType outlines from opentype.js (pure JS, no native
 * canvas), laid out glyph by glyph. We skip opentype.js's own shaping (font.getPath) because its GSUB code
 * throws on DejaVu's ccmp lookups; Latin and CJK need no shaping beyond advance widths and kerning.
 *
 * Latin glyphs come from DejaVu (npm 'dejavu-fonts-ttf', Bitstream Vera licence); Chinese ones from three
 * frequency slices of Noto Sans SC (OFL) committed under test/fixtures/ocr/, because the only npm packages
 * with whole CJK fonts weigh 70+ MB. A character missing from the chosen face falls back along the chain.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { fixturesDir } from './paths';
import { flattenPath, type Contour, type PathCommand } from './raster';

/** The part of opentype.js that we use (it ships no type declarations). */
interface OtGlyph {
  index: number;
  advanceWidth: number;
  getPath(x: number, y: number, fontSize: number): { commands: PathCommand[] };
}
interface OtFont {
  unitsPerEm: number;
  ascender: number;
  descender: number;
  charToGlyph(c: string): OtGlyph;
  getKerningValue(left: OtGlyph, right: OtGlyph): number;
}
const opentype = require('opentype.js') as { parse(buffer: ArrayBuffer): OtFont };

export type FaceName = 'sans' | 'sans-bold' | 'serif' | 'serif-bold' | 'mono' | 'sans-condensed';

const DEJAVU_FILES: Record<FaceName, string> = {
  sans: 'DejaVuSans.ttf',
  'sans-bold': 'DejaVuSans-Bold.ttf',
  serif: 'DejaVuSerif.ttf',
  'serif-bold': 'DejaVuSerif-Bold.ttf',
  mono: 'DejaVuSansMono.ttf',
  'sans-condensed': 'DejaVuSansCondensed.ttf',
};

export const FACES = Object.keys(DEJAVU_FILES) as FaceName[];

const CJK_FILES = ['noto-sans-sc-119-400-normal.woff', 'noto-sans-sc-118-400-normal.woff', 'noto-sans-sc-117-400-normal.woff'];

function parseFont(file: string): OtFont {
  const b = fs.readFileSync(file);
  return opentype.parse(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

const loaded = new Map<string, OtFont>();
function font(file: string): OtFont {
  let f = loaded.get(file);
  if (!f) loaded.set(file, (f = parseFont(file)));
  return f;
}

function faceChain(face: FaceName): OtFont[] {
  const dejavu = path.dirname(require.resolve('dejavu-fonts-ttf/package.json'));
  return [
    font(path.join(dejavu, 'ttf', DEJAVU_FILES[face])),
    ...CJK_FILES.map((f) => font(path.join(fixturesDir(), f))),
    // Last resort for symbols: DejaVu Sans has the widest coverage of the family.
    font(path.join(dejavu, 'ttf', DEJAVU_FILES.sans)),
  ];
}

/** Whether every character of `text` has a glyph in the face's fallback chain. */
export function canRender(text: string, face: FaceName = 'sans'): boolean {
  const chain = faceChain(face);
  return [...text].every((c) => c === ' ' || chain.some((f) => f.charToGlyph(c).index !== 0));
}

/** A laid-out line of text: outlines in pixel coordinates with the pen starting at (0, 0) on the baseline. */
export interface TextLine {
  contours: Contour[];
  /** Pen advance: the line's typographic width in pixels. */
  advance: number;
  /** Typographic ascent and descent (positive, pixels) of the primary face at this size. */
  ascent: number;
  descent: number;
  /** Ink bounding box of the outlines (pixels, y down; baseline at y = 0). */
  ink: { x0: number; y0: number; x1: number; y1: number };
}

/** Lays out `text` at `size` pixels per em; `tracking` adds that many pixels between characters. */
export function layoutText(text: string, face: FaceName, size: number, tracking = 0): TextLine {
  const chain = faceChain(face);
  const primary = chain[0]!;
  const contours: Contour[] = [];
  let pen = 0;
  let prev: { font: OtFont; glyph: OtGlyph } | undefined;
  const ink = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
  for (const c of text) {
    const f = chain.find((g) => g.charToGlyph(c).index !== 0) ?? primary;
    const glyph = f.charToGlyph(c);
    const scale = size / f.unitsPerEm;
    if (prev && prev.font === f) pen += f.getKerningValue(prev.glyph, glyph) * scale;
    for (const contour of flattenPath(glyph.getPath(pen, 0, size).commands)) {
      for (let i = 0; i < contour.length; i += 2) {
        ink.x0 = Math.min(ink.x0, contour[i]!);
        ink.x1 = Math.max(ink.x1, contour[i]!);
        ink.y0 = Math.min(ink.y0, contour[i + 1]!);
        ink.y1 = Math.max(ink.y1, contour[i + 1]!);
      }
      contours.push(contour);
    }
    pen += glyph.advanceWidth * scale + tracking;
    prev = { font: f, glyph };
  }
  if (!contours.length) Object.assign(ink, { x0: 0, y0: 0, x1: 0, y1: 0 });
  const scale = size / primary.unitsPerEm;
  return { contours, advance: pen - tracking, ascent: primary.ascender * scale, descent: -primary.descender * scale, ink };
}
