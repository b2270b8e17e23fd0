/**
 * Deterministic OCR samples rendered with real fonts: document-like pages for the detector, text-line
 * crops for the recogniser, and upright / upside-down crops for the direction classifier. The same seed
 * gives the same pixels on every machine (pure JS rendering, seeded Rng, no system fonts).
 */
import { Rng } from '../../lib/rng';
import { CLS_TEXTS, REC_TEXTS, chinesePhrase, token } from './corpus';
import { FACES, canRender, layoutText, type FaceName, type TextLine } from './font';
import { Canvas, rotate180, type Color, type RgbImage } from './image';
import { boxContour, rotation, transformContours, type Affine } from './raster';

/** One text line drawn on a detector page, with its ground truth. */
export interface DetLine {
  text: string;
  /** The ink box's corners (x, y) clockwise from top-left, in page pixels: [x0, y0, x1, y1, x2, y2, x3, y3]. */
  quad: number[];
  /** Height of the ink box before rotation, pixels. */
  height: number;
}

export interface DetSample {
  name: string;
  image: RgbImage;
  lines: DetLine[];
}

export interface RecSample {
  name: string;
  /** What is drawn: the string the original recogniser reads. */
  text: string;
  image: RgbImage;
}

export interface ClsSample {
  name: string;
  text: string;
  image: RgbImage;
  /** The crop is upside down; PaddleOCR's label '180' (class 1). */
  rotated: boolean;
}

interface PageStyle {
  width: number;
  height: number;
  background: Color;
  ink: Color;
  faces: FaceName[];
  /** Font size range, pixels per em. */
  sizes: [number, number];
  /** Fraction of lines in Chinese. */
  chinese: number;
  /** Rotate this many lines by a few degrees. */
  rotated: number;
  /** A dark banner with light text across the page (a heading bar). */
  banner?: boolean;
  /** Table rules (thin lines): things that are not text. */
  rules?: boolean;
  noise: number;
  blur: number;
  shade: number;
}

const WHITE: Color = [250, 250, 248];

/** The six pages: sizes that need no resize, one over the 960 limit and one that is not a multiple of 32. */
const PAGES: readonly PageStyle[] = [
  { width: 960, height: 640, background: WHITE, ink: [20, 20, 25], faces: ['sans', 'serif', 'sans-bold'], sizes: [18, 40], chinese: 0.25, rotated: 0, rules: true, noise: 3, blur: 0.4, shade: 12 },
  { width: 640, height: 640, background: [28, 32, 40], ink: [235, 235, 230], faces: ['sans', 'sans-bold'], sizes: [20, 44], chinese: 0.3, rotated: 0, noise: 4, blur: 0.5, shade: 8 },
  { width: 960, height: 640, background: [238, 232, 215], ink: [40, 30, 30], faces: ['serif', 'sans', 'sans-condensed'], sizes: [16, 34], chinese: 0.2, rotated: 2, banner: true, noise: 4, blur: 0.6, shade: 25 },
  { width: 1280, height: 720, background: [245, 245, 245], ink: [30, 30, 30], faces: ['mono', 'sans-bold'], sizes: [20, 40], chinese: 0.15, rotated: 0, rules: true, noise: 3, blur: 0.7, shade: 15 },
  { width: 640, height: 960, background: [255, 253, 240], ink: [10, 10, 60], faces: ['serif', 'serif-bold', 'sans'], sizes: [18, 48], chinese: 0.3, rotated: 1, noise: 5, blur: 0.5, shade: 20 },
  { width: 800, height: 600, background: [200, 205, 200], ink: [60, 60, 60], faces: ['sans', 'sans-condensed', 'mono'], sizes: [18, 36], chinese: 0.2, rotated: 0, noise: 6, blur: 0.9, shade: 30 },
];

export const DET_SAMPLE_COUNT = PAGES.length;

function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.next() * (hi - lo);
}

function pickFrom<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(list.length)]!;
}

/** Words added while they fit in `maxWidth` (at least one token, so a line is never empty). */
function fitLine(rng: Rng, face: FaceName, size: number, maxWidth: number, chinese: boolean): { text: string; line: TextLine } {
  const next = () => (chinese ? chinesePhrase(rng) : token(rng));
  let text = next();
  let line = layoutText(text, face, size);
  const target = maxWidth * between(rng, 0.3, 1);
  for (let i = 0; i < 12; i++) {
    const more = `${text}${chinese && rng.next() < 0.5 ? '' : ' '}${next()}`;
    const l = layoutText(more, face, size);
    if (l.advance > target) break;
    text = more;
    line = l;
  }
  return { text, line };
}

function quadOf(line: TextLine, m: Affine): number[] {
  const { x0, y0, x1, y1 } = line.ink;
  return boxContour(x0, y0, x1, y1, m);
}

function insidePage(quad: number[], width: number, height: number, margin: number): boolean {
  for (let i = 0; i < 8; i += 2) {
    if (quad[i]! < margin || quad[i]! > width - margin || quad[i + 1]! < margin || quad[i + 1]! > height - margin) return false;
  }
  return true;
}

function renderPage(style: PageStyle, index: number, rng: Rng): DetSample {
  const { width, height } = style;
  const canvas = new Canvas(width, height, style.background);
  const lines: DetLine[] = [];
  const margin = Math.round(Math.min(width, height) * 0.05);
  let y = margin;
  let rotations = style.rotated;
  let lineNo = 0;

  if (style.banner) {
    const h = 56;
    canvas.fill([boxContour(0, y, width, y + h)], [30, 60, 110]);
    const size = 30;
    const { text, line } = fitLine(rng, 'sans-bold', size, width - 2 * margin, false);
    const baseline = y + h / 2 + (line.ink.y1 - line.ink.y0) / 2 - line.ink.y1;
    const m: Affine = [1, 0, margin, 0, 1, baseline];
    canvas.fill(transformContours(line.contours, m), [245, 245, 240]);
    lines.push({ text, quad: quadOf(line, m), height: line.ink.y1 - line.ink.y0 });
    y += h + 16;
  }

  for (;;) {
    const size = Math.round(between(rng, style.sizes[0], style.sizes[1]));
    const face = pickFrom(rng, style.faces);
    const chinese = rng.next() < style.chinese;
    const available = width - 2 * margin;
    const { text, line } = fitLine(rng, face, size, available, chinese);
    const baseline = y + line.ascent;
    if (baseline + line.descent > height - margin) break;
    const x = margin + rng.next() * Math.max(0, available - line.advance);
    let m: Affine = [1, 0, x, 0, 1, baseline];
    // A few lines are turned by 3 to 8 degrees (a photographed page is rarely square).
    if (rotations > 0 && lineNo > 0 && rng.next() < 0.5) {
      const angle = ((rng.next() < 0.5 ? -1 : 1) * between(rng, 3, 8) * Math.PI) / 180;
      const cx = x + line.advance / 2;
      const cy = baseline - line.ascent / 2;
      const r = rotation(angle, cx, cy);
      const turned: Affine = [r[0], r[1], r[0] * x + r[1] * baseline + r[2], r[3], r[4], r[3] * x + r[4] * baseline + r[5]];
      if (insidePage(quadOf(line, turned), width, height, 4)) {
        m = turned;
        rotations--;
      }
    }
    const ink: Color = style.ink.map((v) => v + (rng.next() - 0.5) * 30) as unknown as Color;
    canvas.fill(transformContours(line.contours, m), ink);
    lines.push({ text, quad: quadOf(line, m), height: line.ink.y1 - line.ink.y0 });
    lineNo++;
    const advanceY = line.ascent + line.descent + size * between(rng, 0.35, 1.1);
    if (style.rules && rng.next() < 0.3) {
      const ry = Math.round(y + line.ascent + line.descent + size * 0.2);
      canvas.fill([boxContour(margin / 2, ry, width - margin / 2, ry + 1.2)], style.ink, 0.8);
    }
    y += advanceY + (m[1] !== 0 ? size * 0.5 : 0);
  }
  canvas.shade(rng, style.shade);
  canvas.blur(style.blur);
  canvas.noise(rng, style.noise);
  return { name: `det-${index}-${width}x${height}`, image: canvas.toImage(), lines };
}

export interface SampleOptions {
  /** Base seed; every kind derives its own. Default 2024. */
  seed?: number;
  /** Generate only the first `count` samples. */
  count?: number;
}

/** Document-like pages for the text detector, with their lines' ground-truth boxes. */
export function makeDetSamples(options: SampleOptions = {}): DetSample[] {
  const count = Math.min(options.count ?? PAGES.length, PAGES.length);
  const out: DetSample[] = [];
  for (let i = 0; i < count; i++) out.push(renderPage(PAGES[i]!, i, new Rng((options.seed ?? 2024) * 1000 + i + 1)));
  return out;
}

interface CropStyle {
  face: FaceName;
  size: number;
  background: Color;
  ink: Color;
  angle: number;
  noise: number;
  blur: number;
}

function cropStyle(rng: Rng): CropStyle {
  const r = rng.next();
  let background: Color;
  let ink: Color;
  if (r < 0.6) {
    const b = 225 + rng.int(30);
    background = [b, b, b - rng.int(15)];
    ink = [rng.int(60), rng.int(60), rng.int(70)];
  } else if (r < 0.8) {
    const b = 15 + rng.int(50);
    background = [b, b + rng.int(10), b + rng.int(20)];
    ink = [220 + rng.int(35), 220 + rng.int(35), 215 + rng.int(40)];
  } else {
    background = [180 + rng.int(70), 180 + rng.int(70), 180 + rng.int(70)];
    ink = [rng.int(90), rng.int(90), 60 + rng.int(120)];
  }
  return {
    face: pickFrom(rng, FACES),
    size: Math.round(between(rng, 28, 40)),
    background,
    ink,
    angle: (between(rng, -1.5, 1.5) * Math.PI) / 180,
    noise: between(rng, 1, 6),
    blur: between(rng, 0, 0.8),
  };
}

/** A tight crop around one rendered line, as a detector box (plus unclip margin) gives the recogniser. */
function renderCrop(text: string, style: CropStyle, rng: Rng): RgbImage {
  if (!canRender(text, style.face)) throw new Error(`bench/ocr: no glyphs for '${text}'`);
  const line = layoutText(text, style.face, style.size);
  const inkH = line.ink.y1 - line.ink.y0;
  const padY = Math.max(3, inkH * between(rng, 0.15, 0.35));
  const padX = Math.max(4, inkH * between(rng, 0.2, 0.6));
  const width = Math.ceil(line.ink.x1 - line.ink.x0 + 2 * padX);
  const height = Math.ceil(inkH + 2 * padY);
  const canvas = new Canvas(width, height, style.background);
  const shift: Affine = [1, 0, padX - line.ink.x0, 0, 1, padY - line.ink.y0];
  const r = rotation(style.angle, width / 2, height / 2);
  const m: Affine = [
    r[0] * shift[0] + r[1] * shift[3],
    r[0] * shift[1] + r[1] * shift[4],
    r[0] * shift[2] + r[1] * shift[5] + r[2],
    r[3] * shift[0] + r[4] * shift[3],
    r[3] * shift[1] + r[4] * shift[4],
    r[3] * shift[2] + r[4] * shift[5] + r[5],
  ];
  canvas.fill(transformContours(line.contours, m), style.ink);
  canvas.shade(rng, 10);
  canvas.blur(style.blur);
  canvas.noise(rng, style.noise);
  return canvas.toImage();
}

/** One generator per crop, so that editing one string of the list leaves every other crop as it was. */
function cropRng(seed: number | undefined, kind: number, i: number): Rng {
  return new Rng(((seed ?? 2024) * 1000 + kind) * 4099 + i * 7919 + 1);
}

/** Text-line crops for the recogniser (REC_TEXTS, each in a seeded style). */
export function makeRecSamples(options: SampleOptions = {}): RecSample[] {
  const count = Math.min(options.count ?? REC_TEXTS.length, REC_TEXTS.length);
  const out: RecSample[] = [];
  for (let i = 0; i < count; i++) {
    const rng = cropRng(options.seed, 101, i);
    const text = REC_TEXTS[i]!;
    out.push({ name: `rec-${i}`, text, image: renderCrop(text, cropStyle(rng), rng) });
  }
  return out;
}

/** Crops for the direction classifier; every other one is turned by 180° (label 1, '180'). */
export function makeClsSamples(options: SampleOptions = {}): ClsSample[] {
  const count = Math.min(options.count ?? CLS_TEXTS.length, CLS_TEXTS.length);
  const out: ClsSample[] = [];
  for (let i = 0; i < count; i++) {
    const rng = cropRng(options.seed, 202, i);
    const text = CLS_TEXTS[i]!;
    const upright = renderCrop(text, cropStyle(rng), rng);
    const rotated = i % 2 === 1;
    out.push({ name: `cls-${i}${rotated ? '-180' : ''}`, text, image: rotated ? rotate180(upright) : upright, rotated });
  }
  return out;
}
