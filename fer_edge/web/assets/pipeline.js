// fer-edge's classify in the browser: the same BlazeFace detectors (full-range and short-range
// merged, as `--detector auto`), the same eye-levelled crop with its margin, the same 48x48
// grey input and the same emotion model, on LiteRT.js (WebAssembly, XNNPack). Each step is the
// CLI's (fer_edge/edge/detect.py, preprocessing.py, classify.py), so `faces(image)` answers
// as `fer-edge classify --format json` does. The constants come from fer-web.json, which
// `fer-edge export --target web` writes from the Python modules' own values.

import {loadAndCompile, loadLiteRt, Tensor} from './litert/litert.js';
import {fit, grayRect, image, pyRound, resize, warpAffineGray} from './imageops.js';

const INPUT_SIDE = 48;

// MediaPipe's SsdAnchorsCalculator with fixed anchor size (detect._ssd_anchors): centres 0..1.
function ssdAnchors(side, strides, interpolated) {
  const anchors = [];
  for (let i = 0; i < strides.length;) {
    let j = i, repeats = 0;
    while (j < strides.length && strides[j] === strides[i]) { j++; repeats += interpolated ? 2 : 1; }
    const cells = Math.floor(side / strides[i]);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let r = 0; r < repeats; r++) anchors.push([(x + 0.5) / cells, (y + 0.5) / cells]);
      }
    }
    i = j;
  }
  return anchors;
}

// IoU and intersection over the smaller area of two x0, y0, x1, y1 boxes (detect._overlap).
function overlap(a, b) {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  const areaA = (a[2] - a[0]) * (a[3] - a[1]), areaB = (b[2] - b[0]) * (b[3] - b[1]);
  return [inter / Math.max(areaA + areaB - inter, 1e-9),
    inter / Math.max(Math.min(areaA, areaB), 1e-9)];
}

// MediaPipe's weighted NMS (detect._weighted_nms): rows are box corners then eye points.
function weightedNms(rows, scores, iou) {
  const order = scores.map((s, k) => k).sort((a, b) => scores[b] - scores[a]);
  const remaining = new Array(order.length).fill(true);
  const out = [], best = [];
  for (let k = 0; k < order.length; k++) {
    if (!remaining[k]) continue;
    const lead = rows[order[k]];
    const sum = new Array(lead.length).fill(0);
    let weight = 0;
    for (let j = 0; j < order.length; j++) {
      if (!remaining[j]) continue;
      if (j !== k && !(overlap(lead, rows[order[j]])[0] > iou)) continue;
      const s = scores[order[j]];
      rows[order[j]].forEach((v, i) => { sum[i] += v * s; });
      weight += s;
      remaining[j] = false;
    }
    out.push(sum.map((v) => v / weight));
    best.push(scores[order[k]]);
  }
  return [out, best];
}

// Detections sorted left to right, then top to bottom (detect.Detections.build).
function sortFaces(faces) {
  return faces.sort((a, b) => a.box[0] - b.box[0] || a.box[1] - b.box[1]);
}

async function runModel(model, input, shape) {
  const tensor = new Tensor(input, shape);
  try {
    const outputs = await model.run([tensor]);
    const arrays = outputs.map((t) => t.toTypedArray());
    outputs.forEach((t) => t.delete());
    return arrays;
  } finally {
    tensor.delete();
  }
}

class BlazeFace {
  constructor(model, spec, post) {
    this.model = model;
    this.side = spec.side;
    this.anchors = ssdAnchors(spec.side, spec.strides, spec.interpolated);
    this.post = post;
    const outs = model.getOutputDetails();
    this.boxesOut = outs.findIndex((o) => o.shape[2] === 16);
    this.scoresOut = outs.findIndex((o) => o.shape[2] === 1);
  }

  // The image scaled to fit the square input, centred on black, in -1..1 (detect._letterbox).
  letterbox(img) {
    const s = this.side;
    const scale = s / Math.max(img.width, img.height);
    const nh = Math.max(1, pyRound(img.height * scale)), nw = Math.max(1, pyRound(img.width * scale));
    // INTER_AREA as detect.py's letterbox (bit for bit), not fit
    const small = resize(img, nw, nh, scale < 1), fx = scale, fy = scale;
    const top = Math.floor((s - nh) / 2), left = Math.floor((s - nw) / 2);
    const x = new Float32Array(s * s * 3).fill(-1);
    const C = small.channels;
    for (let y = 0; y < nh; y++) {
      for (let i = 0; i < nw; i++) {
        const p = (y * nw + i) * C, q = ((top + y) * s + left + i) * 3;
        for (let c = 0; c < 3; c++) x[q + c] = small.data[p + (C >= 3 ? c : 0)] * (1 / 127.5) - 1;
      }
    }
    return {x, fx, fy, top, left};
  }

  // The faces in `img` (its pixels): [{box: [x, y, w, h], score, eyes: [[rx, ry], [lx, ly]]}].
  async detect(img) {
    const {x, fx, fy, top, left} = this.letterbox(img);
    const s = this.side;
    const outputs = await runModel(this.model, x, [1, s, s, 3]);
    const raw = outputs[this.boxesOut], logits = outputs[this.scoresOut];
    const limit = this.post.raw_score_limit;
    const rows = [], scores = [];
    for (let k = 0; k < this.anchors.length; k++) {
      const score = 1 / (1 + Math.exp(-Math.min(limit, Math.max(-limit, logits[k]))));
      const r = k * 16;
      if (!(score > this.post.min_score && raw[r + 2] > 0 && raw[r + 3] > 0)) continue;
      const [ax, ay] = this.anchors[k];
      const cx = raw[r] / s + ax, cy = raw[r + 1] / s + ay;
      const bw = raw[r + 2] / s, bh = raw[r + 3] / s;
      rows.push([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2,
        raw[r + 4] / s + ax, raw[r + 5] / s + ay, raw[r + 6] / s + ax, raw[r + 7] / s + ay]);
      scores.push(score);
    }
    const [merged, best] = weightedNms(rows, scores, this.post.nms_iou);
    const faces = [];
    merged.forEach((row, k) => {
      const pt = (i) => [(row[2 * i] * s - left) / fx, (row[2 * i + 1] * s - top) / fy];
      const [p0, p1, eyeR, eyeL] = [pt(0), pt(1), pt(2), pt(3)];
      const x0 = Math.max(0, p0[0]), y0 = Math.max(0, p0[1]);
      const x1 = Math.min(img.width, p1[0]), y1 = Math.min(img.height, p1[1]);
      if (x1 - x0 >= 1 && y1 - y0 >= 1) {
        faces.push({box: [pyRound(x0), pyRound(y0), pyRound(x1 - x0), pyRound(y1 - y0)],
          score: best[k], eyes: [eyeR, eyeL]});
      }
    });
    return sortFaces(faces);
  }
}

const corners = ([x, y, w, h]) => [x, y, x + w, y + h];

// Both BlazeFace models merged (detect.DualBlazeFaceDetector): every full-range face, and a
// short-range face where full-range found none.
async function detectDual(full, short, img, same) {
  const a = await full.detect(img), b = await short.detect(img);
  const extra = b.filter((f) => !a.some((g) => {
    const [iou, inside] = overlap(corners(f.box), corners(g.box));
    return iou > same.iou || inside > same.inside;
  }));
  return sortFaces(a.concat(extra));
}

// The model's 48x48 grey input of one face of an image (preprocessing.aligned_crop /
// margin_crop of its grey, then face_to_input); only the face's rectangle is made grey.
function faceInput(img, face, margin, align) {
  let crop;
  const [bx, by, bw, bh] = face.box;
  const W = img.width, H = img.height;
  if (align && face.eyes) {
    const cw = Math.max(1, pyRound(bw * (1 + 2 * margin)));
    const ch = Math.max(1, pyRound(bh * (1 + 2 * margin)));
    const [[rx, ry], [lx, ly]] = face.eyes;
    const a = Math.atan2(ly - ry, lx - rx), c = Math.cos(a), s = Math.sin(a);
    const cx = bx + bw / 2, cy = by + bh / 2, ox = (cw - 1) / 2, oy = (ch - 1) / 2;
    const m = [c, -s, cx - c * ox + s * oy, s, c, cy - s * ox - c * oy];
    // the image points the crop reads: its corners mapped, a pixel more each side
    const xs = [], ys = [];
    for (const [u, v] of [[0, 0], [cw - 1, 0], [0, ch - 1], [cw - 1, ch - 1]]) {
      xs.push(m[0] * u + m[1] * v + m[2]);
      ys.push(m[3] * u + m[4] * v + m[5]);
    }
    const x0 = Math.min(W - 1, Math.max(0, Math.floor(Math.min(...xs)) - 1));
    const y0 = Math.min(H - 1, Math.max(0, Math.floor(Math.min(...ys)) - 1));
    const x1 = Math.max(x0 + 1, Math.min(W, Math.floor(Math.max(...xs)) + 3));
    const y1 = Math.max(y0 + 1, Math.min(H, Math.floor(Math.max(...ys)) + 3));
    crop = warpAffineGray(grayRect(img, x0, y0, x1, y1), m, cw, ch, x0, y0);
  } else {
    const mx = pyRound(bw * margin), my = pyRound(bh * margin);
    let x0 = Math.max(0, bx - mx), y0 = Math.max(0, by - my);
    let x1 = Math.min(W, bx + bw + mx), y1 = Math.min(H, by + bh + my);
    if (x1 <= x0 || y1 <= y0) {
      x0 = Math.max(0, Math.min(bx, W - 1)); y0 = Math.max(0, Math.min(by, H - 1));
      x1 = W; y1 = H;
    }
    crop = grayRect(img, x0, y0, x1, y1);
  }
  const side = resize(crop, INPUT_SIDE, INPUT_SIDE,
    Math.min(crop.width, crop.height) >= INPUT_SIDE);
  return Float32Array.from(side.data);      // raw grey levels 0..255: the model rescales
}

// A working-image box in the original image's pixels, clipped (classify._to_original).
function toOriginal(box, scale, width, height) {
  const [x, y, w, h] = box.map((v) => v * scale);
  const x0 = Math.max(0, pyRound(x)), y0 = Math.max(0, pyRound(y));
  const x1 = Math.min(width, pyRound(x + w)), y1 = Math.min(height, pyRound(y + h));
  return [x0, y0, Math.max(0, x1 - x0), Math.max(0, y1 - y0)];
}

const round4 = (v) => Math.round(v * 1e4) / 1e4;

export class Classifier {
  static async load(base = new URL('./', import.meta.url)) {
    const config = await (await fetch(new URL('fer-web.json', base))).json();
    await loadLiteRt(new URL('litert/', base).href);
    const compile = (file) => loadAndCompile(new URL(file, base).href, {accelerator: 'wasm'});
    const [emotion, full, short] = await Promise.all([compile(config.model),
      compile(config.detectors.full.file), compile(config.detectors.short.file)]);
    return new Classifier(config, emotion, full, short);
  }

  constructor(config, emotion, full, short) {
    this.config = config;
    this.labels = config.labels;
    this.emotion = emotion;
    this.full = new BlazeFace(full, config.detectors.full, config.blazeface);
    this.short = new BlazeFace(short, config.detectors.short, config.blazeface);
  }

  // The image as searched: at most max_image_side on its longer side (sources.shrink).
  working(img) {
    const side = this.config.max_image_side;
    if (Math.max(img.width, img.height) <= side) return {img, scale: 1};
    const f = Math.max(img.width, img.height) / side;
    const small = resize(img, Math.max(1, pyRound(img.width / f)), Math.max(1, pyRound(img.height / f)), true);
    return {img: small, scale: Math.max(img.height / small.height, img.width / small.width)};
  }

  detect(img) {
    return detectDual(this.full, this.short, img, this.config.dual_same_face);
  }

  // The emotion model's scores for one 48x48 grey face (raw grey levels 0..255), in label order.
  async scores(face) {
    const [scores] = await runModel(this.emotion, face, [1, INPUT_SIDE, INPUT_SIDE, 1]);
    return scores;
  }

  // Each face's emotion: [{box, emotion, confidence, scores}] (classify's JSON "faces").
  async classify(img, found, scale = 1, width = img.width, height = img.height) {
    const faces = [];
    for (const face of found) {
      const scores = await this.scores(faceInput(img, face, this.config.margin, this.config.align));
      let k = 0;
      scores.forEach((v, i) => { if (v > scores[k]) k = i; });
      faces.push({box: toOriginal(face.box, scale, width, height), emotion: this.labels[k],
        confidence: round4(scores[k]),
        scores: Object.fromEntries(this.labels.map((n, i) => [n, round4(scores[i])]))});
    }
    return faces;
  }

  // classify's answer for one image (an RGBA image from a canvas).
  async faces(original) {
    if (Math.min(original.width, original.height) < this.config.min_image_side) return [];
    const {img, scale} = this.working(original);
    return this.classify(img, await this.detect(img), scale, original.width, original.height);
  }
}

// The frame's grey thumbnail for the newcomer test (video._motion_thumb): `step` x `step` blocks
// averaged (cv2.INTER_AREA's answer where the frame's sides are multiples of `step`; a
// remainder of fewer than `step` pixels at the right and bottom is left out), BT.601 grey.
// Not resizeArea(toGray(img)) from imageops.js, OpenCV's exact arithmetic: that takes 2.6-2.9 ms
// a 640x480 frame against 1.3-1.5 ms for this one pass (node, AMD EPYC), on every camera frame,
// and differs from it by at most 1 grey level, far under the test's threshold (`diff`, 24).
function motionThumb(img, step) {
  const tw = Math.max(1, Math.floor(img.width / step)), th = Math.max(1, Math.floor(img.height / step));
  // sums of grey x 1000 in integers (BT.601's 299, 587, 114), a block row at a time
  const sums = new Int32Array(tw * th), d = img.data, w = img.width;
  const bw = Math.min(step, img.width), bh = Math.min(step, img.height);
  for (let ty = 0; ty < th; ty++) {
    for (let y = ty * bh; y < (ty + 1) * bh; y++) {
      let i = y * w * 4;
      for (let tx = ty * tw; tx < (ty + 1) * tw; tx++) {
        let acc = 0;
        for (let k = 0; k < bw; k++, i += 4) acc += 299 * d[i] + 587 * d[i + 1] + 114 * d[i + 2];
        sums[tx] += acc;
      }
    }
  }
  const n = 1000 * bw * bh;
  return {width: tw, height: th, data: Array.from(sums, (v) => Math.round(v / n))};
}

// Whether the picture changed between two thumbnails away from `boxes` (video._motion_outside):
// at least `min_pixels` thumbnail pixels changed by more than `diff`, outside each box grown
// by `keep_out` of its size on each side (hair, neck and shoulders move with a face).
function movedOutside(thumb, prev, boxes, motion) {
  const {width: tw, height: th} = thumb, step = motion.thumb_step;
  const changed = thumb.data.map((v, i) => (Math.abs(v - prev.data[i]) > motion.diff ? 1 : 0));
  for (const [x, y, w, h] of boxes) {
    const gx = w * motion.keep_out, gy = h * motion.keep_out;
    const x0 = Math.max(0, Math.trunc((x - gx) / step)), y0 = Math.max(0, Math.trunc((y - gy) / step));
    const x1 = Math.min(tw, Math.ceil((x + w + gx) / step)), y1 = Math.min(th, Math.ceil((y + h + gy) / step));
    for (let yy = y0; yy < y1; yy++) changed.fill(0, yy * tw + x0, yy * tw + Math.max(x0, x1));
  }
  return changed.reduce((a, b) => a + b, 0) >= motion.min_pixels;
}

// The camera's faces frame after frame without the full detector on every frame: the CLI's
// video path (edge/video.py) in short. The full detector on every `detect_every`th frame, when
// nothing is followed, when a followed face is lost, and when the picture changed away from
// the followed faces (something came in: a face that enters is found on its first frame); in
// between, each face re-found by short-range BlazeFace in a square crop around its last box,
// all crops tiled into one 128x128 call, and the box mapped onto the full detector's framing
// of that face.
export class Follower {
  constructor(clf) {
    this.clf = clf;
    this.every = clf.config.video.detect_every;
    this.roiScale = clf.config.video.roi_scale;
    this.keep = clf.config.video.framing_keep;
    this.motion = clf.config.video.motion;
    this.since = 0;
    this.followed = [];
    this.keyframes = 0;
    this.prevThumb = null;
  }

  // Whether something moved in where no followed face is, since the last frame.
  newcomer(thumb) {
    const prev = this.prevThumb;
    if (!prev || prev.width !== thumb.width || prev.height !== thumb.height) return true;
    return movedOutside(thumb, prev, this.followed.map((f) => f.box), this.motion);
  }

  // Each box's face searched for in a square crop around it, in one short-range call.
  async mosaic(img, boxes) {
    const side = this.clf.short.side, n = boxes.length;
    const grid = Math.ceil(Math.sqrt(n)), cell = Math.floor(side / grid);
    const mosaic = image(side, side, 4);
    const origins = [];
    boxes.forEach(([x, y, w, h], k) => {
      const s = Math.max(w, h) * this.roiScale;
      const x0 = x + w / 2 - s / 2, y0 = y + h / 2 - s / 2;
      const ix0 = Math.floor(x0), iy0 = Math.floor(y0);
      const cw = Math.ceil(x0 + s) - ix0, ch = Math.ceil(y0 + s) - iy0;
      const crop = image(cw, ch, 4);           // black where it leaves the frame
      for (let yy = Math.max(0, iy0); yy < Math.min(img.height, iy0 + ch); yy++) {
        const sx0 = Math.max(0, ix0), sx1 = Math.min(img.width, ix0 + cw);
        if (sx1 > sx0) {
          crop.data.set(img.data.subarray((yy * img.width + sx0) * 4, (yy * img.width + sx1) * 4),
            ((yy - iy0) * cw + sx0 - ix0) * 4);
        }
      }
      const f = cell / Math.max(cw, ch);
      const {img: tile, fx, fy} = fit(crop, Math.max(1, pyRound(cw * f)), Math.max(1, pyRound(ch * f)));
      const gx = (k % grid) * cell, gy = Math.floor(k / grid) * cell;
      for (let yy = 0; yy < tile.height; yy++) {
        mosaic.data.set(tile.data.subarray(yy * tile.width * 4, (yy + 1) * tile.width * 4),
          ((gy + yy) * side + gx) * 4);
      }
      origins.push([gx, gy, ix0, iy0, 1 / fx, 1 / fy]);
    });
    const got = await this.clf.short.detect(mosaic);
    const out = boxes.map(() => null), nearest = boxes.map(() => Infinity);
    for (const face of got) {
      const [bx, by, bw, bh] = face.box;
      const cx = bx + bw / 2, cy = by + bh / 2;
      const k = Math.floor(cy / cell) * grid + Math.floor(cx / cell);
      if (!(k >= 0 && k < n) || face.score < this.clf.config.blazeface.min_score) continue;
      const [gx, gy, ix0, iy0, ix, iy] = origins[k];
      const shift = Math.hypot(cx - gx - cell / 2, cy - gy - cell / 2);
      if (shift >= nearest[k]) continue;
      nearest[k] = shift;
      out[k] = {box: [(bx - gx) * ix + ix0, (by - gy) * iy + iy0, bw * ix, bh * iy],
        eyes: face.eyes.map(([ex, ey]) => [(ex - gx) * ix + ix0, (ey - gy) * iy + iy0]),
        score: face.score};
    }
    return out;
  }

  // Each face's map from the crop search's box to the full detector's (video._calibrate).
  async calibrate(img, faces) {
    if (!faces.length) return;
    const got = await this.mosaic(img, faces.map((f) => f.box));
    faces.forEach((f, k) => {
      const g = got[k];
      if (!g || g.box[2] <= 0 || g.box[3] <= 0) return;
      const [rx, ry, rw, rh] = f.box, [x, y, w, h] = g.box;
      const m = [(rx + rw / 2 - x - w / 2) / w, (ry + rh / 2 - y - h / 2) / h, rw / w, rh / h];
      f.framing = f.framing ? f.framing.map((v, i) => this.keep * v + (1 - this.keep) * m[i]) : m;
    });
  }

  async refind(img) {
    const got = await this.mosaic(img, this.followed.map((f) => f.box));
    if (got.some((g) => !g)) return null;
    const faces = [];
    for (const [k, g] of got.entries()) {
      const m = this.followed[k].framing || [0, 0, 1, 1];
      const [x, y, w, h] = g.box;
      const cx = x + w / 2 + m[0] * w, cy = y + h / 2 + m[1] * h, nw = w * m[2], nh = h * m[3];
      const x0 = Math.min(img.width, Math.max(0, cx - nw / 2)), y0 = Math.min(img.height, Math.max(0, cy - nh / 2));
      const x1 = Math.min(img.width, Math.max(0, cx + nw / 2)), y1 = Math.min(img.height, Math.max(0, cy + nh / 2));
      const box = [pyRound(x0), pyRound(y0), pyRound(x1 - x0), pyRound(y1 - y0)];
      if (box[2] < 1 || box[3] < 1) return null;
      faces.push({box, eyes: g.eyes, score: g.score, framing: this.followed[k].framing});
    }
    for (let i = 0; i < faces.length; i++) {      // two faces on one: the full detector
      for (let j = i + 1; j < faces.length; j++) {
        if (overlap(corners(faces[i].box), corners(faces[j].box))[0] > 0.3) return null;
      }
    }
    return faces;
  }

  // One frame (an RGBA image): its faces, boxes in its pixels, each with its emotion.
  // `this.ms` holds the last frame's milliseconds finding and classifying them.
  async frame(img) {
    const t0 = performance.now();
    const thumb = this.every > 1 ? motionThumb(img, this.motion.thumb_step) : null;
    let found = null;
    if (this.followed.length && this.since % this.every !== 0 && !this.newcomer(thumb)) {
      found = await this.refind(img);
    }
    this.prevThumb = thumb;
    const keyframe = !found;
    if (!found) {
      this.keyframes++;
      this.since = 0;
      found = await this.clf.detect(img);
      // a face keeps the framing map of the followed face nearest it
      for (const f of found) {
        const near = this.followed.find((g) => overlap(corners(f.box), corners(g.box))[0] > 0.3);
        if (near) f.framing = near.framing;
      }
      await this.calibrate(img, found);
    }
    this.since++;
    this.followed = found;
    const t1 = performance.now();
    const faces = await this.clf.classify(img, found);
    this.ms = {[keyframe ? 'find_full' : 'find_followed']: t1 - t0,
      classify: performance.now() - t1};
    return faces;
  }
}
