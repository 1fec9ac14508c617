// The page: the camera's faces and emotions drawn live, or with ?image=URL one image's faces
// as `fer-edge classify --format json` writes them, in the element #result (for tests and
// scripts). Nothing leaves the device: every file the page loads sits beside it.

import {Classifier, Follower} from './pipeline.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// window.ferWeb: what a test or benchmark reads (frames done, their times, the last faces);
// `hold` set by a benchmark pauses the camera loop while it times the model alone
const state = window.ferWeb = {mode: params.has('image') ? 'image' : 'camera', frames: 0,
  keyframes: 0, facesSeen: 0, frameMs: [], stageMs: {}, faces: null, error: null, ready: false,
  hold: false};

function status(text) {
  $('status').textContent = text;
}

function fail(error) {
  state.error = String(error && error.message || error);
  status(`error: ${state.error}`);
  if (state.mode === 'image') $('result').textContent = JSON.stringify({error: state.error});
  document.body.dataset.state = 'error';
}

// The pixels of a drawable (an ImageBitmap, a video frame) as an RGBA image.
function pixels(source, width, height, scratch) {
  scratch.width = width;
  scratch.height = height;
  const ctx = scratch.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(source, 0, 0);
  const {data} = ctx.getImageData(0, 0, width, height);
  return {width, height, channels: 4, data};
}

const COLOURS = state.colours = {angry: '#e53935', disgust: '#7cb342', fear: '#8e24aa',
  happy: '#fdd835', sad: '#1e88e5', surprise: '#fb8c00', neutral: '#9e9e9e', contempt: '#6d4c41'};

function draw(canvas, source, width, height, faces) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(source, 0, 0, width, height);
  const line = Math.max(2, Math.round(Math.min(width, height) / 200));
  ctx.font = `${Math.max(14, 6 * line)}px sans-serif`;
  for (const f of faces) {
    const [x, y, w, h] = f.box;
    const colour = COLOURS[f.emotion] || '#00e676';
    ctx.lineWidth = line;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    const label = `${f.emotion} ${Math.round(100 * f.confidence)}%`;
    const tw = ctx.measureText(label).width + 2 * line;
    const th = 8 * line;
    const ty = y >= th ? y - th : y + h;
    ctx.fillStyle = colour;
    ctx.fillRect(x, ty, tw, th);
    ctx.fillStyle = '#000';
    ctx.fillText(label, x + line, ty + th - 2 * line);
  }
}

async function classifyImage(clf, url) {
  status(`classifying ${url}`);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  // EXIF orientation applied (as the CLI's decode does), colours as stored
  const bitmap = await createImageBitmap(await response.blob(),
    {imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  const t0 = performance.now();
  const faces = await clf.faces(pixels(bitmap, bitmap.width, bitmap.height, $('scratch')));
  state.frameMs.push(performance.now() - t0);
  state.faces = faces;
  draw($('view'), $('scratch'), bitmap.width, bitmap.height, faces);
  $('result').textContent = JSON.stringify({file: url, faces});
  document.body.dataset.state = 'done';
  status(`${faces.length} face${faces.length === 1 ? '' : 's'}`);
}

// The camera's frames one after the other, each once. `next(done)` resolves with the number
// of the newest frame the page has shown: after a yield to the event loop (the drawing gets
// painted, the camera's callbacks run) when one newer than `done` is already there, else when
// the next arrives. Waiting for the display's next refresh after every frame instead would
// cap the rate at a fraction of the display's whenever a frame takes longer than one refresh
// (at 60 Hz: 30 fps for 17-33 ms of work, 20 fps above): the CPU would idle while a new frame
// waits. Without requestVideoFrameCallback, one frame per display refresh.
function cameraFrames(video) {
  if (!('requestVideoFrameCallback' in video)) {
    return {next: (done) => new Promise((resolve) => requestAnimationFrame(() => resolve(done + 1)))};
  }
  let shown = 0, waiting = [];
  const tick = (now, meta) => {
    shown = meta.presentedFrames;
    for (const resolve of waiting.splice(0)) resolve(shown);
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
  const yieldTask = () => new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = resolve;
    channel.port2.postMessage(null);
  });
  return {
    async next(done) {
      await yieldTask();
      if (shown > done) return shown;
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

async function runCamera(clf) {
  status('opening the camera');
  const video = $('camera');
  video.srcObject = await navigator.mediaDevices.getUserMedia(
    {video: {width: {ideal: 640}, height: {ideal: 480}}, audio: false});
  await video.play();
  const follower = new Follower(clf);
  const camera = cameraFrames(video);
  const started = performance.now();
  status('live');
  document.body.dataset.state = 'live';
  for (let done = -1; ; done = await camera.next(done)) {
    const width = video.videoWidth, height = video.videoHeight;
    if (width && height && !state.hold) {
      const t0 = performance.now();
      const frame = pixels(video, width, height, $('scratch'));
      const t1 = performance.now();
      const faces = await follower.frame(frame);
      const t2 = performance.now();
      draw($('view'), $('scratch'), width, height, faces);
      const t3 = performance.now();
      // where each frame's time goes (benchmarks/web_fps.py reports their sums)
      for (const [stage, ms] of Object.entries({read: t1 - t0, ...follower.ms, draw: t3 - t2})) {
        state.stageMs[stage] = (state.stageMs[stage] || 0) + ms;
      }
      state.frameMs.push(t3 - t0);
      if (state.frameMs.length > 1000) state.frameMs.splice(0, 500);
      state.frames++;
      state.facesSeen += faces.length;
      state.keyframes = follower.keyframes;
      state.faces = faces;
      const seconds = (performance.now() - started) / 1000;
      $('fps').textContent = `${(state.frames / seconds).toFixed(1)} frames/s, ` +
        `${faces.length} face${faces.length === 1 ? '' : 's'}`;
    }
  }
}

async function main() {
  status('loading the models');
  const clf = await Classifier.load();
  state.classifier = clf;      // for benchmarks: the model alone (benchmarks/web_fps.py)
  state.ready = true;
  state.labels = clf.labels;
  if (state.mode === 'image') await classifyImage(clf, params.get('image'));
  else await runCamera(clf);
}

main().catch(fail);
