/* The review viewer: the colour-corrected photo with the segmentation drawn on top, live.
 *
 * The server sends the review picture and the label mask at the same size, the mask coded as
 * grey levels (class k -> k * 100). Fills and outlines are drawn here from the labels, so the
 * toggle, the opacity, the outline mode and the brush act at once. Zoom with the wheel or
 * + / -, pan by dragging (pan tool, middle button or Space held). The scale bar follows the
 * zoom, in millimetres from the calibration (mm per pixel of the review picture).
 * No build step, no libraries.
 */
(function () {
  'use strict';

  const cfg = JSON.parse(document.getElementById('viewer-config').textContent);
  const W = cfg.width;
  const H = cfg.height;
  const $ = (id) => document.getElementById(id);
  const viewport = $('viewport');
  const stage = $('stage');
  const photo = $('photo');
  const overlay = $('overlay');
  const octx = overlay.getContext('2d');
  const ring = $('ring');
  const colours = { 1: cfg.colours['1'], 2: cfg.colours['2'] };
  const GREY = 100;
  const OUTLINE = 2;

  overlay.width = W;
  overlay.height = H;
  if ($('sketch')) { $('sketch').width = W; $('sketch').height = H; }
  stage.style.width = W + 'px';
  stage.style.height = H + 'px';

  const state = {
    scale: 1, tx: 0, ty: 0, tool: 'pan', brushClass: 1, brushSize: 16,
    outline: false, show: true, opacity: 0.45, ready: false, editOutline: false,
  };
  let labels = new Uint8Array(W * H);
  let diff = null;           // another mask to compare with (difference map), or null
  let initial = null;        // labels as loaded (to tell whether the mask was changed)
  let initialIsCorrection = false;
  const image = octx.createImageData(W, H);
  const history = [];        // undo steps (diffs), newest last
  let future = [];           // redo steps
  let historyBytes = 0;
  let before = null;         // labels at the start of the edit in progress
  const MAX_HISTORY_BYTES = 96 * 1024 * 1024;
  let sketch = null;         // the polygon / lasso being drawn (image coordinates)
  let drag = null;
  let spaceDown = false;

  document.querySelectorAll('.swatch').forEach((el) => {
    const c = colours[el.dataset.class];
    if (c) el.style.background = `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  });

  // ------------------------------------------------------------------ loading
  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const im = new Image();
      im.onload = () => resolve(im);
      im.onerror = () => reject(new Error('a picture failed to load'));
      im.src = url;
    });
  }

  function decodeMask(img) {
    const c = document.createElement('canvas');
    c.width = W;
    c.height = H;
    const x = c.getContext('2d', { willReadFrequently: true });
    x.imageSmoothingEnabled = false;
    x.drawImage(img, 0, 0, W, H);
    const d = x.getImageData(0, 0, W, H).data;
    const out = new Uint8Array(W * H);
    for (let i = 0; i < out.length; i++) {
      const v = d[4 * i];
      out[i] = v < GREY / 2 ? 0 : (v < 1.5 * GREY ? 1 : 2);
    }
    return out;
  }

  async function loadMask(url, { asInitial = false } = {}) {
    const img = await loadImage(url);
    labels = decodeMask(img);
    if (asInitial) initial = labels.slice();
    render();
    maskChanged();
  }

  // ---------------------------------------------------------------- rendering
  function isEdge(i, x, y, L) {
    for (let k = 1; k <= OUTLINE; k++) {
      if (x - k < 0 || labels[i - k] !== L) return true;
      if (x + k >= W || labels[i + k] !== L) return true;
      if (y - k < 0 || labels[i - k * W] !== L) return true;
      if (y + k >= H || labels[i + k * W] !== L) return true;
    }
    return false;
  }

  function render(x0 = 0, y0 = 0, x1 = W, y1 = H) {
    x0 = Math.max(0, Math.floor(x0));
    y0 = Math.max(0, Math.floor(y0));
    x1 = Math.min(W, Math.ceil(x1));
    y1 = Math.min(H, Math.ceil(y1));
    if (x1 <= x0 || y1 <= y0) return;
    const d = image.data;
    for (let y = y0; y < y1; y++) {
      let i = y * W + x0;
      for (let x = x0; x < x1; x++, i++) {
        const L = labels[i];
        const o = 4 * i;
        if (diff && diff[i] !== L) {             // the two masks compared disagree here
          d[o] = 255; d[o + 1] = 0; d[o + 2] = 255; d[o + 3] = 255;
        } else if (L > 0 && (!state.outline || isEdge(i, x, y, L))) {
          const c = colours[L];
          d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2]; d[o + 3] = 255;
        } else {
          d[o + 3] = 0;
        }
      }
    }
    octx.putImageData(image, 0, 0, x0, y0, x1 - x0, y1 - y0);
  }

  // --------------------------------------------------------------- deep zoom
  // Tiles of the full-resolution photo over the review picture once it is magnified: the
  // level whose pixels are closest to the screen's, only the tiles in view.
  const dz = cfg.deepzoom;
  const tileLayer = $('tiles');
  const tiles = new Map();    // "level/x/y" -> img
  let tileLevel = -1;
  let tilesQueued = false;
  const tileStats = { requested: 0, loaded: 0, lastStepMs: null };

  function updateTiles() {
    tilesQueued = false;
    if (!dz || !tileLayer) return;
    const k = W / dz.full_width;                 // review px per full px
    const screenPerFull = state.scale * k;
    if (state.scale <= 1.05) {                    // the review picture is sharp enough
      tileLayer.hidden = true;
      return;
    }
    tileLayer.hidden = false;
    const level = Math.max(0, Math.min(dz.levels - 1, Math.floor(Math.log2(1 / screenPerFull))));
    if (level !== tileLevel) {
      tiles.forEach((im) => im.remove());
      tiles.clear();
      tileLevel = level;
    }
    const f = 2 ** level;                          // full px per level px
    const r = viewport.getBoundingClientRect();
    const toFull = (v, t) => (v - t) / state.scale / k;
    const span = dz.tile * f;
    const lw = Math.ceil(dz.full_width / f), lh = Math.ceil(dz.full_height / f);
    const nx = Math.ceil(lw / dz.tile), ny = Math.ceil(lh / dz.tile);
    const xa = Math.max(0, Math.floor(toFull(0, state.tx) / span));
    const xb = Math.min(nx - 1, Math.floor(toFull(r.width, state.tx) / span));
    const ya = Math.max(0, Math.floor(toFull(0, state.ty) / span));
    const yb = Math.min(ny - 1, Math.floor(toFull(r.height, state.ty) / span));
    const t0 = performance.now();
    let pending = 0;
    for (let y = ya; y <= yb; y++) {
      for (let x = xa; x <= xb; x++) {
        const key = `${level}/${x}/${y}`;
        if (tiles.has(key)) continue;
        const im = new Image();
        im.draggable = false;
        im.className = 'tile';
        const tw = Math.min(dz.tile, lw - x * dz.tile), th = Math.min(dz.tile, lh - y * dz.tile);
        im.style.left = (x * span * k) + 'px';
        im.style.top = (y * span * k) + 'px';
        im.style.width = (tw * f * k) + 'px';
        im.style.height = (th * f * k) + 'px';
        pending++;
        im.onload = () => {
          tileStats.loaded++;
          if (--pending === 0) tileStats.lastStepMs = performance.now() - t0;
        };
        im.src = dz.url.replace('{level}', level).replace('{x}', x).replace('{y}', y);
        tileStats.requested++;
        tiles.set(key, im);
        tileLayer.appendChild(im);
      }
    }
    if (pending === 0) tileStats.lastStepMs = performance.now() - t0;
  }

  function queueTiles() {
    if (!dz || tilesQueued) return;
    tilesQueued = true;
    requestAnimationFrame(updateTiles);
  }

  // ------------------------------------------------------------ zoom and pan
  function apply() {
    queueTiles();
    stage.style.transform = `translate(${state.tx}px, ${state.ty}px) scale(${state.scale})`;
    overlay.classList.toggle('pixelated', state.scale > 2);
    ring.style.width = ring.style.height = state.brushSize * state.scale + 'px';
    scaleBar();
    if (sketch) drawSketch();
  }

  function fitScale() {
    const r = viewport.getBoundingClientRect();
    return Math.min(r.width / W, r.height / H);
  }

  function fit() {
    const r = viewport.getBoundingClientRect();
    const s = fitScale();
    state.scale = s;
    state.tx = (r.width - W * s) / 2;
    state.ty = (r.height - H * s) / 2;
    apply();
  }

  // the donor site (pixels with a class) framed with a margin: a small site on a large
  // photo opens big enough to judge; never smaller than "Fit"
  function zoomToSite() {
    let x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (let y = 0; y < H; y++) {
      const row = y * W;
      for (let x = 0; x < W; x++) {
        if (labels[row + x]) {
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          y1 = y;
        }
      }
    }
    if (x1 < 0) { fit(); return; }
    const r = viewport.getBoundingClientRect();
    const bw = (x1 - x0 + 1) * 1.4, bh = (y1 - y0 + 1) * 1.4;
    const s = Math.min(32, Math.max(fitScale(), Math.min(r.width / bw, r.height / bh)));
    state.scale = s;
    state.tx = r.width / 2 - (x0 + x1 + 1) / 2 * s;
    state.ty = r.height / 2 - (y0 + y1 + 1) / 2 * s;
    apply();
  }

  // brightness, contrast and gamma of the photo (for dark skin and dim photos); the
  // overlay is not affected
  function setLook(name, v) {
    const el = $(name);
    if (!el) return;
    el.value = String(v);
    const b = Number($('brightness').value), c = Number($('contrast').value);
    const gm = Number($('gamma').value);
    document.querySelectorAll('#gamma-filter feFuncR, #gamma-filter feFuncG, #gamma-filter feFuncB')
      .forEach((f) => f.setAttribute('exponent', String(1 / gm)));
    const filter = `brightness(${b}) contrast(${c})` + (gm !== 1 ? ' url(#gamma-filter)' : '');
    photo.style.filter = filter;
    const tiles = $('tiles');
    if (tiles) tiles.style.filter = filter;
    $(name + '-value').textContent = Number(v).toFixed(2);
  }

  function zoomAt(factor, cx, cy) {
    const r = viewport.getBoundingClientRect();
    if (cx === undefined) { cx = r.width / 2; cy = r.height / 2; }
    const s = Math.min(32, Math.max(fitScale() * 0.5, state.scale * factor));
    const k = s / state.scale;
    state.tx = cx - (cx - state.tx) * k;
    state.ty = cy - (cy - state.ty) * k;
    state.scale = s;
    apply();
  }

  function scaleBar() {
    const bar = $('scalebar');
    if (!cfg.mm_per_px) { bar.hidden = true; return; }
    const mmPerScreenPx = cfg.mm_per_px / state.scale;
    const target = 140 * mmPerScreenPx;
    const k = Math.pow(10, Math.floor(Math.log10(target)));
    let len = k;
    for (const m of [1, 2, 5]) if (m * k <= target) len = m * k;
    $('scalebar-bar').style.width = (len / mmPerScreenPx).toFixed(1) + 'px';
    const text = len >= 1 ? String(Math.round(len)) : len.toPrecision(1);
    $('scalebar-label').textContent = text + ' mm';
  }

  // ------------------------------------------------------------------ brushing
  function toImage(e) {
    const r = viewport.getBoundingClientRect();
    return { x: (e.clientX - r.left - state.tx) / state.scale,
             y: (e.clientY - r.top - state.ty) / state.scale };
  }

  function stamp(cx, cy, value, box) {
    const rad = state.brushSize / 2;
    const r2 = rad * rad;
    const xa = Math.max(0, Math.floor(cx - rad)), xb = Math.min(W - 1, Math.ceil(cx + rad));
    const ya = Math.max(0, Math.floor(cy - rad)), yb = Math.min(H - 1, Math.ceil(cy + rad));
    for (let y = ya; y <= yb; y++) {
      const dy = y - cy;
      for (let x = xa; x <= xb; x++) {
        const dx = x - cx;
        const i = y * W + x;
        if (dx * dx + dy * dy <= r2 && canWrite(i, value)) labels[i] = value;
      }
    }
    box.x0 = Math.min(box.x0, xa); box.y0 = Math.min(box.y0, ya);
    box.x1 = Math.max(box.x1, xb + 1); box.y1 = Math.max(box.y1, yb + 1);
  }

  function paintLine(a, b) {
    const value = state.tool === 'eraser' ? 0 : state.brushClass;
    const dist = Math.hypot(b.x - a.x, b.y - a.y);
    const steps = Math.max(1, Math.ceil(dist / Math.max(1, state.brushSize / 4)));
    const box = { x0: W, y0: H, x1: 0, y1: 0 };
    for (let s = 0; s <= steps; s++) {
      const t = s / steps;
      stamp(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, value, box);
    }
    const m = OUTLINE + 1;
    render(box.x0 - m, box.y0 - m, box.x1 + m, box.y1 + m);
    queueNumbers();
  }

  // The donor-site outline (the pixels with a class) is locked unless "Edit outline" is on:
  // painting then only changes classes inside the site, and the eraser does nothing.
  function canWrite(i, value) {
    return state.editOutline || (labels[i] !== 0 && value !== 0);
  }

  // ------------------------------------------------------------------ history
  // Each edit is kept as the pixels it changed (old and new values), so undo and redo go
  // back as far as MAX_HISTORY_BYTES allows (hundreds of strokes), not a fixed 20 copies.
  function beginEdit() { before = labels.slice(); }

  function endEdit() {
    if (!before) return;
    const idx = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] !== before[i]) idx.push(i);
    if (idx.length) {
      const I = Uint32Array.from(idx);
      const o = new Uint8Array(I.length);
      const n = new Uint8Array(I.length);
      for (let k = 0; k < I.length; k++) { o[k] = before[I[k]]; n[k] = labels[I[k]]; }
      history.push({ I, o, n });
      historyBytes += 6 * I.length;
      future = [];
      while (historyBytes > MAX_HISTORY_BYTES && history.length > 1) {
        historyBytes -= 6 * history.shift().I.length;
      }
    }
    before = null;
    render();
    maskChanged();
  }

  function step(from, to, values) {
    const h = from.pop();
    if (!h) return;
    const v = h[values];
    for (let k = 0; k < h.I.length; k++) labels[h.I[k]] = v[k];
    to.push(h);
    historyBytes += (to === history ? 6 : -6) * h.I.length;
    render();
    maskChanged();
  }
  const undo = () => step(history, future, 'o');
  const redo = () => step(future, history, 'n');

  // ------------------------------------------------------------- region tools
  function floodFill(p, value) {
    const x0 = Math.floor(p.x), y0 = Math.floor(p.y);
    if (x0 < 0 || y0 < 0 || x0 >= W || y0 >= H) return;
    const seed = y0 * W + x0;
    const from = labels[seed];
    if (from === value) return;
    if (!canWrite(seed, value)) { hint('The outline is locked: switch on Edit outline (X).'); return; }
    const stack = new Int32Array(W * H);
    let top = 0;
    stack[top++] = seed;
    labels[seed] = value;
    while (top) {
      const i = stack[--top];
      const x = i % W;
      const nb = [x > 0 ? i - 1 : -1, x < W - 1 ? i + 1 : -1, i - W, i + W];
      for (const j of nb) {
        if (j >= 0 && j < labels.length && labels[j] === from) { labels[j] = value; stack[top++] = j; }
      }
    }
  }

  function fillHoles(value) {
    // background not connected to the picture's border is a hole in the site
    const outside = new Uint8Array(W * H);
    const stack = new Int32Array(W * H);
    let top = 0;
    const push = (i) => { if (labels[i] === 0 && !outside[i]) { outside[i] = 1; stack[top++] = i; } };
    for (let x = 0; x < W; x++) { push(x); push((H - 1) * W + x); }
    for (let y = 0; y < H; y++) { push(y * W); push(y * W + W - 1); }
    while (top) {
      const i = stack[--top];
      const x = i % W;
      if (x > 0) push(i - 1);
      if (x < W - 1) push(i + 1);
      if (i >= W) push(i - W);
      if (i < (H - 1) * W) push(i + W);
    }
    for (let i = 0; i < labels.length; i++) if (labels[i] === 0 && !outside[i]) labels[i] = value;
  }

  function fillPolygon(points, value) {
    if (points.length < 3) return;
    const xs = points.map((q) => q.x), ys = points.map((q) => q.y);
    const xa = Math.max(0, Math.floor(Math.min(...xs))), xb = Math.min(W, Math.ceil(Math.max(...xs)) + 1);
    const ya = Math.max(0, Math.floor(Math.min(...ys))), yb = Math.min(H, Math.ceil(Math.max(...ys)) + 1);
    if (xb <= xa || yb <= ya) return;
    const c = document.createElement('canvas');
    c.width = xb - xa;
    c.height = yb - ya;
    const x = c.getContext('2d', { willReadFrequently: true });
    x.beginPath();
    // pixel centres: the pixel (i, j) is inside when its centre (i + 0.5, j + 0.5) is
    points.forEach((q, k) => (k ? x.lineTo : x.moveTo).call(x, q.x + 0.5 - xa, q.y + 0.5 - ya));
    x.closePath();
    x.fill();
    const d = x.getImageData(0, 0, c.width, c.height).data;
    for (let y = ya; y < yb; y++) {
      for (let xx = xa; xx < xb; xx++) {
        const i = y * W + xx;
        if (d[4 * ((y - ya) * c.width + (xx - xa)) + 3] >= 128 && canWrite(i, value)) labels[i] = value;
      }
    }
  }

  function drawSketch() {
    const c = $('sketch');
    if (!c) return;
    const x = c.getContext('2d');
    x.clearRect(0, 0, W, H);
    if (!sketch || !sketch.length) return;
    x.lineWidth = 2 / state.scale;
    x.strokeStyle = '#ffeb3b';
    x.beginPath();
    sketch.forEach((q, k) => (k ? x.lineTo : x.moveTo).call(x, q.x, q.y));
    x.stroke();
  }

  function closeSketch() {
    if (!sketch) return;
    const pts = sketch;
    sketch = null;
    drawSketch();
    if (pts.length < 3) return;
    beginEdit();
    fillPolygon(pts, state.brushClass);
    endEdit();
  }

  function hint(text) {
    const el = $('paint-hint');
    if (el) el.textContent = text;
  }

  function isChanged() {
    if (!initial) return false;
    for (let i = 0; i < labels.length; i++) if (labels[i] !== initial[i]) return true;
    return false;
  }

  function maskChanged() {
    const el = $('mask-state');
    if (!el) return;
    const changed = isChanged();
    el.textContent = changed ? 'Mask corrected: it will be saved with your read.'
      : (initialIsCorrection ? 'Your earlier correction, unchanged.' : 'Mask as loaded.');
    el.classList.toggle('changed', changed);
    const warn = $('paint-warning');
    if (warn && initial) {
      let outside = 0;
      for (let i = 0; i < labels.length; i++) if (labels[i] === 1 && initial[i] === 0) outside++;
      warn.textContent = outside ? `Epithelialized painted outside the donor site as loaded ` +
        `(${outside} px): check that it is not the sticker or intact skin.` : '';
      warn.hidden = !outside;
    }
    queueNumbers();
    if (state.ready) document.dispatchEvent(new CustomEvent('maskchange'));
  }

  function maskPNG() {
    const c = document.createElement('canvas');
    c.width = W;
    c.height = H;
    const x = c.getContext('2d');
    const img = x.createImageData(W, H);
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i] * GREY;
      img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    x.putImageData(img, 0, 0);
    return c.toDataURL('image/png').split(',')[1];
  }

  // ------------------------------------------------------------ live planimetry
  // mm² of skin per review-picture pixel, as the pipeline computes it
  // (calibration.geometry.PlaneGeometry.pixel_area_mm2 at the review picture's shape)
  let areaMap = null;
  let numbersQueued = false;

  function buildAreaMap(p) {
    const h = p.homography;
    const sx = p.full_shape[1] / W;
    const sy = p.full_shape[0] / H;
    const det = h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1])
      - h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0])
      + h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0]);
    const map = new Float64Array(W * H);
    for (let y = 0; y < H; y++) {
      const Y = (y + 0.5) * sy - 0.5;
      for (let x = 0; x < W; x++) {
        const X = (x + 0.5) * sx - 0.5;
        const w = h[2][0] * X + h[2][1] * Y + h[2][2];
        map[y * W + x] = Math.abs(det / (w * w * w)) * sx * sy;
      }
    }
    return map;
  }

  function areas(of = labels) {
    if (!areaMap) return null;
    let epi = 0, raw = 0;
    for (let i = 0; i < of.length; i++) {
      const L = of[i];
      if (L === 1) epi += areaMap[i]; else if (L === 2) raw += areaMap[i];
    }
    const donor = epi + raw;
    return { epithelialized_mm2: epi, raw_mm2: raw, donor_site_mm2: donor,
             healed_percent: donor > 0 ? 100 * epi / donor : null };
  }

  function showNumbers() {
    numbersQueued = false;
    const a = areas();
    if (!a || !$('live-epi')) return;
    const cm2 = (v) => (v / 100).toFixed(2) + ' cm²';
    $('live-epi').textContent = cm2(a.epithelialized_mm2);
    $('live-raw').textContent = cm2(a.raw_mm2);
    $('live-donor').textContent = cm2(a.donor_site_mm2);
    $('live-healed').textContent = a.healed_percent === null ? '—'
      : a.healed_percent.toFixed(1) + ' %';
  }

  function queueNumbers() {
    if (!areaMap || numbersQueued) return;
    numbersQueued = true;
    requestAnimationFrame(showNumbers);
  }

  function counts() {
    const n = [0, 0, 0];
    for (let i = 0; i < labels.length; i++) n[labels[i]]++;
    return n;
  }

  // ------------------------------------------------------------------ tools UI
  function setTool(tool) {
    if (!cfg.editable && tool !== 'pan') return;
    state.tool = tool;
    document.querySelectorAll('.tool').forEach((b) => {
      b.classList.toggle('active', b.dataset.tool === tool);
    });
    viewport.dataset.tool = tool;
    ring.hidden = !['brush', 'eraser'].includes(tool);
    if (tool === 'eraser' && !state.editOutline) {
      hint('The eraser changes the outline: switch on Edit outline (X) to use it.');
    }
    if (tool !== 'lasso' && sketch) { sketch = null; drawSketch(); }
  }

  function setOpacity(v) {
    state.opacity = Math.min(1, Math.max(0, v));
    overlay.style.opacity = String(state.opacity);
    const s = $('opacity');
    s.value = String(state.opacity);
    $('opacity-value').textContent = Math.round(state.opacity * 100) + '%';
  }

  function setShow(v) {
    state.show = v;
    overlay.style.visibility = v ? 'visible' : 'hidden';
    $('show-overlay').checked = v;
  }

  function setOutline(v) {
    state.outline = v;
    $('outline').checked = v;
    render();
  }

  function setBrushSize(v) {
    state.brushSize = Math.min(120, Math.max(2, Math.round(v)));
    const s = $('brush-size');
    if (s) {
      s.value = String(state.brushSize);
      $('brush-size-value').textContent = state.brushSize + ' px';
    }
    ring.style.width = ring.style.height = state.brushSize * state.scale + 'px';
  }

  function setEditOutline(v) {
    state.editOutline = v;
    const el = $('edit-outline');
    if (el) el.checked = v;
    hint(v ? 'Editing the outline: painting may add to or remove from the donor site.' : '');
  }

  function setBrushClass(v) {
    state.brushClass = v;
    const s = $('brush-class');
    if (s) s.value = String(v);
  }

  $('show-overlay').addEventListener('change', (e) => setShow(e.target.checked));
  $('opacity').addEventListener('input', (e) => setOpacity(Number(e.target.value)));
  $('outline').addEventListener('change', (e) => setOutline(e.target.checked));
  $('fit').addEventListener('click', fit);

  // compare the photo with the overlay: a swipe (the overlay only left of a line) and a
  // flicker (the overlay on and off twice a second)
  let flickerTimer = null;
  function setSwipe(v) {
    overlay.style.clipPath = v >= 100 ? '' : `inset(0 ${100 - v}% 0 0)`;
    if ($('swipe')) $('swipe').value = String(v);
  }
  function toggleFlicker() {
    if (flickerTimer) {
      clearInterval(flickerTimer);
      flickerTimer = null;
      setShow(true);
    } else {
      flickerTimer = setInterval(() => setShow(!state.show), 500);
    }
    if ($('flicker')) $('flicker').classList.toggle('active', Boolean(flickerTimer));
  }
  if ($('swipe')) $('swipe').addEventListener('input', (e) => setSwipe(Number(e.target.value)));
  if ($('flicker')) $('flicker').addEventListener('click', toggleFlicker);
  if ($('zoom-site')) $('zoom-site').addEventListener('click', zoomToSite);
  for (const name of ['brightness', 'contrast', 'gamma']) {
    if ($(name)) $(name).addEventListener('input', (e) => setLook(name, Number(e.target.value)));
  }
  if ($('look-reset')) {
    $('look-reset').addEventListener('click', () => {
      for (const name of ['brightness', 'contrast', 'gamma']) setLook(name, 1);
    });
  }
  $('zoom-in').addEventListener('click', () => zoomAt(1.25));
  $('zoom-out').addEventListener('click', () => zoomAt(0.8));
  document.querySelectorAll('.tool').forEach((b) => {
    b.addEventListener('click', () => setTool(b.dataset.tool));
  });
  if ($('brush-size')) {
    $('brush-size').addEventListener('input', (e) => setBrushSize(Number(e.target.value)));
    $('brush-class').addEventListener('change', (e) => setBrushClass(Number(e.target.value)));
    $('undo').addEventListener('click', undo);
    $('redo').addEventListener('click', redo);
    $('fill-holes').addEventListener('click', () => { beginEdit(); fillHoles(state.brushClass); endEdit(); });
    $('edit-outline').addEventListener('change', (e) => setEditOutline(e.target.checked));
    $('reset-mask').addEventListener('click', async () => {
      beginEdit();
      await loadMask(cfg.model_mask);
      endEdit();
    });
  }

  // ------------------------------------------------------------- pointer input
  viewport.addEventListener('pointerdown', (e) => {
    viewport.focus({ preventScroll: true });
    const panning = state.tool === 'pan' || e.button === 1 || spaceDown || !cfg.editable;
    if (!state.ready || (e.button !== 0 && e.button !== 1)) return;
    viewport.setPointerCapture(e.pointerId);
    const p = toImage(e);
    if (panning) {
      drag = { mode: 'pan', x: e.clientX, y: e.clientY, tx: state.tx, ty: state.ty };
    } else if (state.tool === 'fill') {
      beginEdit();
      floodFill(p, state.brushClass);
      endEdit();
    } else if (state.tool === 'lasso') {
      // drag: a lasso, closed on release; clicks: polygon vertices (Enter or a double
      // click closes, Esc cancels)
      if (!sketch) sketch = [];
      sketch.push(p);
      drag = { mode: 'lasso', x: e.clientX, y: e.clientY, moved: false };
      drawSketch();
    } else {
      beginEdit();
      drag = { mode: 'paint', last: p };
      paintLine(p, p);
    }
    e.preventDefault();
  });

  viewport.addEventListener('pointermove', (e) => {
    const r = viewport.getBoundingClientRect();
    ring.style.left = e.clientX - r.left + 'px';
    ring.style.top = e.clientY - r.top + 'px';
    if (!drag) return;
    if (drag.mode === 'pan') {
      state.tx = drag.tx + e.clientX - drag.x;
      state.ty = drag.ty + e.clientY - drag.y;
      apply();
    } else if (drag.mode === 'lasso') {
      if (Math.hypot(e.clientX - drag.x, e.clientY - drag.y) > 4) drag.moved = true;
      if (drag.moved) { sketch.push(toImage(e)); drawSketch(); }
    } else {
      const p = toImage(e);
      paintLine(drag.last, p);
      drag.last = p;
    }
  });

  function endDrag() {
    const d = drag;
    drag = null;
    if (d && d.mode === 'paint') endEdit();
    if (d && d.mode === 'lasso' && d.moved) closeSketch();
  }
  viewport.addEventListener('pointerup', endDrag);
  viewport.addEventListener('pointercancel', endDrag);
  viewport.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = viewport.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  viewport.addEventListener('dblclick', () => { if (state.tool === 'lasso') closeSketch(); });
  window.addEventListener('resize', fit);

  // ------------------------------------------------------------------ keyboard
  function typing(target) {
    return target.matches('input[type=number], input[type=text], input[type=password], ' +
                          'textarea, select');
  }

  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && typing(e.target)) { e.target.blur(); return; }
    if (typing(e.target) || e.altKey || e.metaKey) return;
    if (e.ctrlKey) {
      const k = e.key.toLowerCase();
      if (cfg.editable && k === 'z' && !e.shiftKey) { undo(); e.preventDefault(); }
      if (cfg.editable && (k === 'y' || (k === 'z' && e.shiftKey))) { redo(); e.preventDefault(); }
      return;
    }
    if (sketch && e.key === 'Enter') { closeSketch(); e.preventDefault(); return; }
    if (sketch && e.key === 'Escape') { sketch = null; drawSketch(); e.preventDefault(); return; }
    const actions = {
      o: () => setShow(!state.show),
      l: () => setOutline(!state.outline),
      ',': () => setOpacity(state.opacity - 0.1),
      '.': () => setOpacity(state.opacity + 0.1),
      f: fit,
      z: zoomToSite,
      v: toggleFlicker,
      '+': () => zoomAt(1.25),
      '=': () => zoomAt(1.25),
      '-': () => zoomAt(0.8),
      h: () => setTool('pan'),
      b: () => setTool('brush'),
      e: () => setTool('eraser'),
      g: () => setTool('fill'),
      k: () => setTool('lasso'),
      x: () => setEditOutline(!state.editOutline),
      1: () => setBrushClass(1),
      2: () => setBrushClass(2),
      '[': () => setBrushSize(state.brushSize * 0.8),
      ']': () => setBrushSize(state.brushSize * 1.25),
      '?': () => { const d = $('shortcuts'); if (d) d.open = !d.open; },
    };
    if (e.key === ' ') { spaceDown = true; e.preventDefault(); return; }
    const act = actions[e.key.toLowerCase()] || actions[e.key];
    if (act) { act(); e.preventDefault(); }
  });
  document.addEventListener('keyup', (e) => { if (e.key === ' ') spaceDown = false; });

  // -------------------------------------------------------------------- start
  async function start() {
    if (cfg.planimetry) areaMap = buildAreaMap(cfg.planimetry);
    try {
      await Promise.all([
        loadImage(cfg.photo).then((im) => { photo.src = im.src; }),
        loadMask(cfg.mask, { asInitial: true }),
      ]);
      initialIsCorrection = Boolean(cfg.initial_is_correction);
      maskChanged();
      $('loading').hidden = true;
      zoomToSite();
      setOpacity(state.opacity);
      setBrushSize(state.brushSize);
      setTool(state.tool);
      state.ready = true;
      viewport.dataset.ready = '1';
      document.dispatchEvent(new CustomEvent('viewerready'));
      // the next photo's pictures, so that it opens without waiting
      for (const url of cfg.preload || []) { const im = new Image(); im.src = url; }
    } catch (err) {
      $('loading').textContent = 'The picture could not be loaded: reload the page.';
    }
  }

  window.reviewViewer = {
    get ready() { return state.ready; },
    get state() { return { ...state }; },
    isChanged,
    undo,
    redo,
    get undoDepth() { return history.length; },
    get redoDepth() { return future.length; },
    shouldSendMask: () => cfg.editable && (isChanged() || Boolean(cfg.initial_is_correction)),
    maskPNG,
    counts,
    areas,
    loadMask,
    fit,
    zoomToSite,
    zoomAt,
    areasOf: (arr) => areas(arr),
    async labelsOf(url) { return decodeMask(await loadImage(url)); },
    setDiff(other) { diff = other; render(); },
    get flickering() { return Boolean(flickerTimer); },
    get tileStats() { return { ...tileStats, shown: tileLayer && !tileLayer.hidden, level: tileLevel }; },
  };
  start();
})();
