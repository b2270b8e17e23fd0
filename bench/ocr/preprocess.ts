/**
 * Model inputs exactly as PaddleOCR's inference scripts make them (tools/infer/predict_det.py,
 * predict_rec.py, predict_cls.py), so that a fidelity number means what it would in the real pipeline.
 *
 * PaddleOCR reads images with cv2, so pixels are in BGR order and the ImageNet mean/std (given in RGB
 * order) are applied to B, G, R in that order; we reproduce that quirk rather than "fix" it. Resizing is
 * cv2.resize's INTER_LINEAR (half-pixel centres, no antialiasing) with the result rounded to 8 bits.
 */
import type { RgbImage } from './image';

/** A float32 NCHW tensor's data and shape. */
export interface InputTensor {
  data: Float32Array;
  dims: [number, number, number, number];
}

/** cv2.resize(img, (width, height), interpolation=INTER_LINEAR) on an 8-bit image. */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  if (width === img.width && height === img.height) return img;
  const out = new Uint8Array(width * height * 3);
  const sx = img.width / width;
  const sy = img.height / height;
  const xs = new Int32Array(width * 2);
  const wx = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const f = Math.max(0, (x + 0.5) * sx - 0.5);
    const x0 = Math.min(Math.floor(f), img.width - 1);
    xs[2 * x] = x0;
    xs[2 * x + 1] = Math.min(x0 + 1, img.width - 1);
    wx[x] = f - x0;
  }
  const src = img.data;
  for (let y = 0; y < height; y++) {
    const f = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(f), img.height - 1);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const wy = f - y0;
    for (let x = 0; x < width; x++) {
      const a = (y0 * img.width + xs[2 * x]!) * 3;
      const b = (y0 * img.width + xs[2 * x + 1]!) * 3;
      const c = (y1 * img.width + xs[2 * x]!) * 3;
      const d = (y1 * img.width + xs[2 * x + 1]!) * 3;
      const u = wx[x]!;
      for (let ch = 0; ch < 3; ch++) {
        const top = src[a + ch]! + (src[b + ch]! - src[a + ch]!) * u;
        const bottom = src[c + ch]! + (src[d + ch]! - src[c + ch]!) * u;
        out[(y * width + x) * 3 + ch] = Math.round(top + (bottom - top) * wy);
      }
    }
  }
  return { width, height, data: out };
}

/** PaddleOCR's DetResizeForTest defaults for PP-OCRv4 det: limit_type 'max', limit_side_len 960. */
export const DET_LIMIT_SIDE = 960;
const DET_MEAN = [0.485, 0.456, 0.406];
const DET_STD = [0.229, 0.224, 0.225];

/** The detector's input size for an image: longest side limited to 960, both sides rounded to multiples of 32. */
export function detInputSize(width: number, height: number, limitSide = DET_LIMIT_SIDE): { width: number; height: number } {
  const ratio = Math.max(width, height) > limitSide ? limitSide / Math.max(width, height) : 1;
  // Python's round() is banker's rounding; the halves it differs on (x.5 * 32) never occur for these sizes.
  const round32 = (v: number) => Math.max(Math.round(Math.trunc(v * ratio) / 32) * 32, 32);
  return { width: round32(width), height: round32(height) };
}

/** DetResizeForTest + NormalizeImage (ImageNet mean/std on [0, 1], BGR order) + ToCHWImage, batch of one. */
export function detInput(img: RgbImage, limitSide = DET_LIMIT_SIDE): InputTensor {
  const size = detInputSize(img.width, img.height, limitSide);
  const r = resizeBilinear(img, size.width, size.height);
  const plane = size.width * size.height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const bgr = r.data[i * 3 + (2 - c)]!;
      data[c * plane + i] = (bgr / 255 - DET_MEAN[c]!) / DET_STD[c]!;
    }
  }
  return { data, dims: [1, 3, size.height, size.width] };
}

/** PP-OCRv4 rec_image_shape '3,48,320' and cls_image_shape '3,48,192'. */
export const REC_SHAPE = { height: 48, width: 320 } as const;
export const CLS_SHAPE = { height: 48, width: 192 } as const;

/**
 * resize_norm_img: scale to height 48 keeping the aspect ratio (capped at the target width), normalise
 * (x / 255 - 0.5) / 0.5 in BGR order, pad with zeros on the right up to the target width.
 *
 * The recogniser's target width is PaddleOCR's batch rule for a batch of one: max(320, int(48 * w / h)),
 * so a long line is never squeezed; the classifier's is fixed at 192.
 */
export function lineInput(img: RgbImage, shape: { height: number; width: number }, growWidth: boolean): InputTensor {
  const h = shape.height;
  const ratio = img.width / img.height;
  const targetW = growWidth ? Math.trunc(h * Math.max(shape.width / h, ratio)) : shape.width;
  const resizedW = Math.min(targetW, Math.ceil(h * ratio));
  const r = resizeBilinear(img, resizedW, h);
  const plane = targetW * h;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < resizedW; x++) {
      for (let c = 0; c < 3; c++) {
        data[c * plane + y * targetW + x] = (r.data[(y * resizedW + x) * 3 + (2 - c)]! / 255 - 0.5) / 0.5;
      }
    }
  }
  return { data, dims: [1, 3, h, targetW] };
}

export function recInput(img: RgbImage): InputTensor {
  return lineInput(img, REC_SHAPE, true);
}

export function clsInput(img: RgbImage): InputTensor {
  return lineInput(img, CLS_SHAPE, false);
}
