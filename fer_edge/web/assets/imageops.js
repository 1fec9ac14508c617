// The image operations of fer-edge's edge runtime (OpenCV's, as edge/preprocessing.py and
// edge/detect.py call them), written out in JavaScript so the page's faces get the pixels the
// CLI's get: resize (INTER_AREA for shrinking, INTER_LINEAR for enlarging), BGR -> grey, and
// warpAffine (INTER_LINEAR, BORDER_REPLICATE). Each follows OpenCV's own arithmetic (its area
// weights, its fixed-point bilinear coefficients), so a pixel differs from OpenCV's by a
// rounding at most.
//
// An image is {width, height, channels, data}: data a Uint8Array or Uint8ClampedArray of
// height x width x channels bytes, row by row (a canvas's RGBA has channels 4; its alpha is
// carried along and never read by the model).

export function image(width, height, channels, data) {
  return {width, height, channels, data: data || new Uint8Array(width * height * channels)};
}

// Python's round(): halves to even (the CLI's sizes and boxes are rounded so).
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// OpenCV's computeResizeAreaTab: for each output column, the input columns it covers and the
// share of each (shrinking only: input / output >= 1), as flat arrays: output d takes the
// entries start[d] .. start[d + 1] - 1 of (src, weight).
function areaTable(inSize, outSize) {
  const scale = inSize / outSize;
  const start = new Int32Array(outSize + 1), src = [], weight = [];
  for (let d = 0; d < outSize; d++) {
    start[d] = src.length;
    const f1 = d * scale, f2 = f1 + scale;
    const cell = Math.min(scale, inSize - f1);
    const s2 = Math.min(Math.floor(f2), inSize - 1);
    const s1 = Math.min(Math.ceil(f1), s2);
    if (s1 - f1 > 1e-3) { src.push(s1 - 1); weight.push((s1 - f1) / cell); }
    for (let s = s1; s < s2; s++) { src.push(s); weight.push(1 / cell); }
    if (f2 - s2 > 1e-3) { src.push(s2); weight.push(Math.min(Math.min(f2 - s2, 1), cell) / cell); }
  }
  start[outSize] = src.length;
  return {start, src: Int32Array.from(src), weight: Float32Array.from(weight)};
}

// cv2.resize(..., INTER_AREA) to a smaller (or equal) size: each output pixel the area-weighted
// mean of the input pixels under it (in float, as OpenCV's 8-bit area resize). Grey (1 channel)
// or colour: the first three channels (an RGBA image's alpha comes out opaque).
export function resizeArea(src, outW, outH) {
  const {width: W, height: H, channels: C, data} = src;
  const K = C === 1 ? 1 : 3;
  const xt = areaTable(W, outW), yt = areaTable(H, outH);
  // every input row resized horizontally, then the rows combined
  const rows = new Float32Array(H * outW * K);
  const {start, src: xs, weight: xw} = xt;
  if (K === 3) {
    for (let sy = 0, o = 0; sy < H; sy++) {
      const base = sy * W * C;
      for (let dx = 0; dx < outW; dx++) {
        let a = 0, b = 0, c = 0;
        for (let k = start[dx], end = start[dx + 1]; k < end; k++) {
          const p = base + xs[k] * C, w = xw[k];
          a += data[p] * w; b += data[p + 1] * w; c += data[p + 2] * w;
        }
        rows[o++] = a; rows[o++] = b; rows[o++] = c;
      }
    }
  } else {
    for (let sy = 0, o = 0; sy < H; sy++) {
      const base = sy * W;
      for (let dx = 0; dx < outW; dx++) {
        let a = 0;
        for (let k = start[dx], end = start[dx + 1]; k < end; k++) a += data[base + xs[k]] * xw[k];
        rows[o++] = a;
      }
    }
  }
  const out = image(outW, outH, C);
  const acc = new Float32Array(outW * K);
  for (let dy = 0; dy < outH; dy++) {
    acc.fill(0);
    for (let k = yt.start[dy]; k < yt.start[dy + 1]; k++) {
      const row = yt.src[k] * outW * K, w = yt.weight[k];
      for (let i = 0; i < acc.length; i++) acc[i] += rows[row + i] * w;
    }
    const o = dy * outW * C, od = out.data;
    for (let dx = 0, i = 0, q = o; dx < outW; dx++, q += C) {
      for (let c = 0; c < K; c++, i++) od[q + c] = Math.min(255, Math.round(acc[i]));
      if (C === 4) od[q + 3] = 255;
    }
  }
  return out;
}

// OpenCV's INTER_LINEAR source positions and 11-bit fixed-point weights along one axis.
function linearTable(inSize, outSize) {
  const scale = inSize / outSize;
  const index = new Int32Array(outSize * 2), weight = new Int32Array(outSize * 2);
  for (let d = 0; d < outSize; d++) {
    let f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    f -= s;
    if (s < 0) { s = 0; f = 0; }
    if (s >= inSize - 1) { s = inSize - 1; f = 0; }
    index[2 * d] = s;
    index[2 * d + 1] = Math.min(s + 1, inSize - 1);
    weight[2 * d] = Math.round((1 - f) * 2048);     // each weight rounded on its own, as
    weight[2 * d + 1] = Math.round(f * 2048);       // OpenCV's saturate_cast does
  }
  return {index, weight};
}

// cv2.resize(..., INTER_LINEAR): bilinear, pixel centres aligned, OpenCV's fixed point.
export function resizeLinear(src, outW, outH) {
  const {width: W, channels: C, data} = src;
  const xt = linearTable(W, outW), yt = linearTable(src.height, outH);
  const out = image(outW, outH, C);
  const row0 = new Int32Array(outW * C), row1 = new Int32Array(outW * C);
  const horizontal = (sy, row) => {
    const base = sy * W * C;
    for (let dx = 0; dx < outW; dx++) {
      const a = base + xt.index[2 * dx] * C, b = base + xt.index[2 * dx + 1] * C;
      const wa = xt.weight[2 * dx], wb = xt.weight[2 * dx + 1];
      for (let c = 0; c < C; c++) row[dx * C + c] = data[a + c] * wa + data[b + c] * wb;
    }
  };
  for (let dy = 0; dy < outH; dy++) {
    horizontal(yt.index[2 * dy], row0);
    horizontal(yt.index[2 * dy + 1], row1);
    const wa = yt.weight[2 * dy], wb = yt.weight[2 * dy + 1];
    const o = dy * outW * C;
    for (let i = 0; i < row0.length; i++) {
      out.data[o + i] = Math.min(255, (row0[i] * wa + row1[i] * wb + (1 << 21)) >> 22);
    }
  }
  return out;
}

// The resize the CLI makes for a given change of size: INTER_AREA when it shrinks (both
// callers shrink both sides alike), INTER_LINEAR otherwise.
export function resize(src, outW, outH, shrinking) {
  if (outW === src.width && outH === src.height) return src;
  return shrinking ? resizeArea(src, outW, outH) : resizeLinear(src, outW, outH);
}

// cv2.resize(..., INTER_AREA) to exactly half the size (an odd last row or column dropped):
// OpenCV's 2x2 fast path, each pixel (a + b + c + d + 2) >> 2. Every channel carried.
function halve(src) {
  const {width: W, channels: C, data} = src;
  const w = W >> 1, h = src.height >> 1;
  const out = image(w, h, C);
  for (let y = 0; y < h; y++) {
    const r0 = 2 * y * W * C, r1 = r0 + W * C, o = y * w * C;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < C; c++) {
        const p = 2 * x * C + c;
        out.data[o + x * C + c] = (data[r0 + p] + data[r0 + p + C] + data[r1 + p] +
          data[r1 + p + C] + 2) >> 2;
      }
    }
  }
  return out;
}

// detect.fit: `src` resized to outW x outH, halved while it stays at least twice that size,
// then bilinear the rest of the way. Returns {img, fx, fy}: the scale from src's pixels to img's.
export function fit(src, outW, outH) {
  let img = src, fx = 1, fy = 1;
  while (img.width >= 2 * outW && img.height >= 2 * outH) {
    img = halve(img);
    fx /= 2; fy /= 2;
  }
  if (img.width !== outW || img.height !== outH) {
    fx *= outW / img.width; fy *= outH / img.height;
    img = resizeLinear(img, outW, outH);
  }
  return {img, fx, fy};
}

// cv2.cvtColor(BGR or BGRA -> GRAY) on an RGB(A) image: OpenCV's 14-bit fixed-point weights.
export function toGray(src) {
  return grayRect(src, 0, 0, src.width, src.height);
}

// toGray(src)[y0:y1, x0:x1]: the grey of a rectangle only (a face's, not the whole frame's).
export function grayRect(src, x0, y0, x1, y1) {
  const {width: W, channels: C, data} = src;
  const w = x1 - x0, h = y1 - y0;
  const out = image(w, h, 1);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    if (C === 1) {
      out.data.set(data.subarray((y0 + y) * W + x0, (y0 + y) * W + x1), o);
      continue;
    }
    for (let x = 0, p = ((y0 + y) * W + x0) * C; x < w; x++, p += C) {
      out.data[o + x] = (data[p] * 4899 + data[p + 1] * 9617 + data[p + 2] * 1868 + 8192) >> 14;
    }
  }
  return out;
}

// cv2.warpAffine(grey, m, (w, h), INTER_LINEAR | WARP_INVERSE_MAP, BORDER_REPLICATE): `m`
// maps an output pixel to its input point; positions in 1/32 pixel (OpenCV's INTER_BITS 5,
// from 10-bit products) and 15-bit bilinear weights. `src` may be the rectangle of the image
// from (ox, oy) (grayRect) that holds every point read and reaches the image's edge wherever
// a point leaves it: the border repeated is then the image's.
export function warpAffineGray(src, m, outW, outH, ox = 0, oy = 0) {
  const {width: W, height: H, data} = src;
  const out = image(outW, outH, 1);
  const AB = 1024, ROUND = 16;
  const adelta = new Int32Array(outW), bdelta = new Int32Array(outW);
  for (let x = 0; x < outW; x++) {
    adelta[x] = Math.round(m[0] * x * AB);
    bdelta[x] = Math.round(m[3] * x * AB);
  }
  const clampX = (v) => (v < 0 ? 0 : v >= W ? W - 1 : v);
  const clampY = (v) => (v < 0 ? 0 : v >= H ? H - 1 : v);
  for (let y = 0; y < outH; y++) {
    const X0 = Math.round((m[1] * y + m[2]) * AB) + ROUND;
    const Y0 = Math.round((m[4] * y + m[5]) * AB) + ROUND;
    for (let x = 0; x < outW; x++) {
      const X = (X0 + adelta[x]) >> 5, Y = (Y0 + bdelta[x]) >> 5;
      const sx = (X >> 5) - ox, sy = (Y >> 5) - oy, fx = X & 31, fy = Y & 31;
      const x0 = clampX(sx), x1 = clampX(sx + 1), y0 = clampY(sy), y1 = clampY(sy + 1);
      const w00 = (32 - fx) * (32 - fy) * 32, w01 = fx * (32 - fy) * 32;
      const w10 = (32 - fx) * fy * 32, w11 = fx * fy * 32;
      const v = data[y0 * W + x0] * w00 + data[y0 * W + x1] * w01 + data[y1 * W + x0] * w10 +
        data[y1 * W + x1] * w11;
      out.data[y * outW + x] = Math.min(255, (v + (1 << 14)) >> 15);
    }
  }
  return out;
}
