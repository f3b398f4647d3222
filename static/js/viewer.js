// Slice viewer: scrolls a series rendered server-side as PNGs (see clinic/viewer.py).
// Wheel, keys, slider and vertical drag (touch) move through the slices; neighbours are preloaded so scrolling stays smooth;
// while the series is still being processed the viewer polls its state and picks up the analysis.

const PRELOAD_RADIUS = 3;
const PAGE_STEP = 10;
const DRAG_PIXELS_PER_SLICE = 12;
const POLL_MILLISECONDS = 3000;
const ZOOM_STEP = 1.25;
const ZOOM_MIN = 1;
const ZOOM_MAX = 8;
// Dragging in Window mode: grey units per screen pixel, as a share of the window's width (feels the same for any window).
const WINDOW_DRAG_SENSITIVITY = 0.004;
const WINDOW_RELOAD_MILLISECONDS = 120;
const VALUE_READOUT_MILLISECONDS = 150;
const SVG_NS = "http://www.w3.org/2000/svg";

class SliceViewer {
  constructor(root) {
    this.root = root;
    this.stage = root.querySelector("[data-viewer-stage]");
    this.sliceImage = root.querySelector("[data-slice-image]");
    this.maskImage = root.querySelector("[data-mask-image]");
    this.emptyMessage = root.querySelector("[data-viewer-empty]");
    this.slider = root.querySelector("[data-slice-slider]");
    this.position = root.querySelector("[data-slice-position]");
    this.overlayToggle = root.querySelector("[data-overlay-toggle]");
    this.plotFigure = root.querySelector("[data-probability-figure]");
    this.plot = root.querySelector("[data-probability-plot]");
    this.canvas = root.querySelector("[data-viewer-canvas]");
    this.windowReadout = root.querySelector("[data-window-readout]");
    this.valueReadout = root.querySelector("[data-value-readout]");
    this.tool = "scroll";
    this.zoom = 1;
    this.offset = { x: 0, y: 0 };
    this.customWindow = null;
    this.preloaded = new Map();
    this.index = 0;
    this.wheelRemainder = 0;
    this.state = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    this.window = this.checkedWindow();
    this.bindEvents();
    this.applyState(this.state, { initial: true });
    this.showWindow();
    if (this.state.processing) this.poll();
  }

  checkedWindow() {
    const checked = this.root.querySelector("[data-window-choice]:checked");
    return checked ? checked.value : this.state.defaultWindow || "";
  }

  bindEvents() {
    this.stage.addEventListener("wheel", (event) => {
      if (!this.state.sliceCount) return;
      event.preventDefault();
      // Trackpads send many small deltas, mice one big one per notch: one slice per ~50 pixels or per notch.
      this.wheelRemainder += event.deltaMode === 0 ? event.deltaY / 50 : Math.sign(event.deltaY);
      const steps = Math.trunc(this.wheelRemainder);
      if (steps !== 0) {
        this.wheelRemainder -= steps;
        this.show(this.index + steps);
      }
    }, { passive: false });
    this.stage.addEventListener("keydown", (event) => this.onKey(event));
    // Dragging (mouse, pen or finger) scrolls through the slices, sets the window, or pans, by the chosen tool.
    this.stage.addEventListener("pointerdown", (event) => {
      const window = this.currentWindow();
      this.dragStart = {
        x: event.clientX, y: event.clientY, index: this.index, offset: { ...this.offset },
        centre: window ? window.centre : 0, width: window ? window.width : 1,
      };
      this.stage.setPointerCapture(event.pointerId);
    });
    this.stage.addEventListener("pointermove", (event) => {
      if (!this.dragStart) {
        this.readValueSoon(event);
        return;
      }
      const dx = event.clientX - this.dragStart.x;
      const dy = event.clientY - this.dragStart.y;
      if (this.tool === "window" && this.state.windows.length) {
        const step = Math.max(this.dragStart.width, 1) * WINDOW_DRAG_SENSITIVITY;
        this.setCustomWindow(this.dragStart.centre - dy * step, Math.max(1, this.dragStart.width + dx * step));
      } else if (this.tool === "pan") {
        this.offset = { x: this.dragStart.offset.x + dx, y: this.dragStart.offset.y + dy };
        this.applyTransform();
      } else {
        this.show(this.dragStart.index + Math.round(dy / DRAG_PIXELS_PER_SLICE));
      }
    });
    this.stage.addEventListener("pointerleave", () => { this.valueReadout.textContent = ""; });
    const endDrag = () => { this.dragStart = null; };
    this.stage.addEventListener("pointerup", endDrag);
    this.stage.addEventListener("pointercancel", endDrag);
    this.slider.addEventListener("input", () => this.show(Number(this.slider.value) - 1));
    this.root.querySelectorAll("[data-window-choice]").forEach((choice) => {
      choice.addEventListener("change", () => {
        this.window = this.checkedWindow();
        this.customWindow = null;
        this.preloaded.clear();
        this.showWindow();
        this.show(this.index);
      });
    });
    this.root.querySelectorAll("[data-tool]").forEach((choice) => {
      choice.addEventListener("change", () => this.setTool(choice.value));
    });
    this.root.querySelectorAll("[data-zoom]").forEach((button) => {
      button.addEventListener("click", () => this.zoomBy(button.dataset.zoom));
    });
    this.stage.addEventListener("wheel", (event) => {
      if (!event.ctrlKey) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      this.zoomBy(event.deltaY < 0 ? "in" : "out");
    }, { capture: true, passive: false });
    this.overlayToggle.addEventListener("change", () => this.drawMask());
    this.plot.addEventListener("click", (event) => {
      const box = this.plot.getBoundingClientRect();
      this.show(Math.floor(((event.clientX - box.left) / box.width) * this.state.sliceCount));
      this.stage.focus();
    });
  }

  onKey(event) {
    const moves = {
      ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -PAGE_STEP, PageDown: PAGE_STEP,
    };
    if (event.key in moves) {
      this.show(this.index + moves[event.key]);
    } else if (event.key === "Home") {
      this.show(0);
    } else if (event.key === "End") {
      this.show(this.state.sliceCount - 1);
    } else if (event.key === "+" || event.key === "=") {
      this.zoomBy("in");
    } else if (event.key === "-") {
      this.zoomBy("out");
    } else if (event.key === "0") {
      this.zoomBy("reset");
    } else if ((event.key === "w" || event.key === "W") && this.state.windows.length) {
      this.setTool("window");
    } else if (event.key === "p" || event.key === "P") {
      this.setTool("pan");
    } else if (event.key === "o" || event.key === "O") {
      if (this.overlayToggle.disabled) return;
      this.overlayToggle.checked = !this.overlayToggle.checked;
      this.drawMask();
    } else {
      return;
    }
    event.preventDefault();
  }

  imageUrl(index) {
    const url = this.state.imageUrl.replace("{index}", index);
    if (this.customWindow) {
      const { centre, width } = this.customWindow;
      return `${url.replace("{window}", "custom")}&center=${centre.toFixed(1)}&width=${width.toFixed(1)}`;
    }
    return url.replace("{window}", encodeURIComponent(this.window));
  }

  currentWindow() {
    if (this.customWindow) return this.customWindow;
    return this.state.windows.find((window) => window.name === this.window) || null;
  }

  showWindow() {
    const window = this.currentWindow();
    this.windowReadout.textContent = window ? `W ${Math.round(window.width)} L ${Math.round(window.centre)}` : "";
  }

  setCustomWindow(centre, width) {
    this.customWindow = { centre, width };
    this.showWindow();
    // Ask for the exact (DICOM linear) rendering of the slice on screen, at most every WINDOW_RELOAD_MILLISECONDS.
    if (this.windowTimer) return;
    this.windowTimer = setTimeout(() => {
      this.windowTimer = null;
      this.preloaded.clear();
      this.show(this.index);
    }, WINDOW_RELOAD_MILLISECONDS);
  }

  setTool(tool) {
    this.tool = tool;
    this.stage.dataset.tool = tool;
    const choice = this.root.querySelector(`[data-tool][value="${tool}"]`);
    if (choice) choice.checked = true;
  }

  zoomBy(direction) {
    if (direction === "reset") {
      this.zoom = 1;
      this.offset = { x: 0, y: 0 };
    } else {
      const factor = direction === "in" ? ZOOM_STEP : 1 / ZOOM_STEP;
      const zoom = Math.min(Math.max(this.zoom * factor, ZOOM_MIN), ZOOM_MAX);
      // Keep the stage's centre where it is while zooming.
      const box = this.stage.getBoundingClientRect();
      const centre = { x: box.width / 2, y: box.height / 2 };
      this.offset = {
        x: centre.x - ((centre.x - this.offset.x) * zoom) / this.zoom,
        y: centre.y - ((centre.y - this.offset.y) * zoom) / this.zoom,
      };
      this.zoom = zoom;
    }
    this.applyTransform();
  }

  applyTransform() {
    this.canvas.style.transform = `translate(${this.offset.x}px, ${this.offset.y}px) scale(${this.zoom})`;
    this.root.dataset.zoom = this.zoom.toFixed(2);
  }

  readValueSoon(event) {
    if (!this.state.sliceCount || !this.sliceImage.naturalWidth || !this.state.valueUrl) return;
    const box = this.sliceImage.getBoundingClientRect();
    const scale = Math.min(box.width / this.sliceImage.naturalWidth, box.height / this.sliceImage.naturalHeight);
    const left = box.left + (box.width - this.sliceImage.naturalWidth * scale) / 2;
    const top = box.top + (box.height - this.sliceImage.naturalHeight * scale) / 2;
    const x = Math.floor((event.clientX - left) / scale);
    const y = Math.floor((event.clientY - top) / scale);
    if (x < 0 || y < 0 || x >= this.sliceImage.naturalWidth || y >= this.sliceImage.naturalHeight) {
      this.valueReadout.textContent = "";
      return;
    }
    clearTimeout(this.valueTimer);
    const index = this.index;
    this.valueTimer = setTimeout(async () => {
      try {
        const url = `${this.state.valueUrl.replace("{index}", index)}?x=${x}&y=${y}`;
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        if (!response.ok || index !== this.index) return;
        const reading = await response.json();
        this.valueReadout.textContent = `(${reading.x}, ${reading.y}) ${reading.value} ${reading.unit}`.trim();
      } catch (error) {
        // The readout is a convenience: a dropped request leaves the last value shown.
      }
    }, VALUE_READOUT_MILLISECONDS);
  }

  maskUrl(index) {
    return this.state.analysis.maskUrl.replace("{index}", index);
  }

  load(url) {
    if (!this.preloaded.has(url)) {
      const image = new Image();
      image.src = url;
      this.preloaded.set(url, image.decode().then(() => url, () => url));
    }
    return this.preloaded.get(url);
  }

  show(index) {
    const count = this.state.sliceCount;
    if (!count) return;
    this.index = Math.min(Math.max(index, 0), count - 1);
    this.root.dataset.sliceIndex = String(this.index);
    this.slider.value = String(this.index + 1);
    const location = this.state.sliceLocations[this.index];
    this.position.textContent = `${this.index + 1} of ${count}`;
    this.position.title = Number.isFinite(location) ? `Slice location ${location.toFixed(1)} mm` : "";
    this.root.dispatchEvent(new CustomEvent("viewer:slice", { detail: { index: this.index, location }, bubbles: true }));
    const wanted = this.index;
    // Swap the picture only once the new one is decoded, so scrolling never flashes an empty frame.
    this.load(this.imageUrl(wanted)).then((url) => {
      if (wanted === this.index) this.sliceImage.src = url;
    });
    this.drawMask();
    this.markPlot();
    this.preloadAround(wanted);
  }

  preloadAround(index) {
    for (let offset = 1; offset <= PRELOAD_RADIUS; offset += 1) {
      for (const neighbour of [index + offset, index - offset]) {
        if (neighbour < 0 || neighbour >= this.state.sliceCount) continue;
        this.load(this.imageUrl(neighbour));
        if (this.overlayShown()) this.load(this.maskUrl(neighbour));
      }
    }
  }

  overlayShown() {
    return Boolean(this.state.analysis && this.state.analysis.maskUrl && this.overlayToggle.checked);
  }

  drawMask() {
    if (!this.overlayShown()) {
      this.maskImage.hidden = true;
      this.root.dataset.overlay = "off";
      return;
    }
    const wanted = this.index;
    this.load(this.maskUrl(wanted)).then((url) => {
      if (wanted !== this.index || !this.overlayShown()) return;
      this.maskImage.src = url;
      this.maskImage.hidden = false;
      this.root.dataset.overlay = "on";
    });
  }

  drawPlot() {
    const analysis = this.state.analysis;
    this.plot.replaceChildren();
    this.plotFigure.hidden = !analysis || !analysis.tumourProbabilities.length;
    if (this.plotFigure.hidden) return;
    const values = analysis.tumourProbabilities;
    const x = (i) => ((i + 0.5) / values.length) * 1000;
    const y = (p) => 60 - p * 56;
    const threshold = document.createElementNS(SVG_NS, "line");
    Object.entries({ x1: 0, x2: 1000, y1: y(0.5), y2: y(0.5), class: "plot-threshold" })
      .forEach(([name, value]) => threshold.setAttribute(name, value));
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", values.map((p, i) => `${x(i)},${y(p)}`).join(" "));
    line.setAttribute("class", "plot-line");
    this.marker = document.createElementNS(SVG_NS, "rect");
    this.marker.setAttribute("class", "plot-marker");
    this.marker.setAttribute("y", 0);
    this.marker.setAttribute("height", 64);
    this.marker.setAttribute("width", this.markerWidth());
    this.marker.setAttribute("rx", 2);
    this.plot.append(threshold, this.marker, line);
    this.markPlot();
  }

  markerWidth() {
    // A band as wide as one slice, but never wider than a thumb's width nor thinner than a hairline.
    return Math.min(Math.max(1000 / this.state.sliceCount, 6), 24);
  }

  markPlot() {
    if (!this.marker || !this.state.sliceCount) return;
    const width = 1000 / this.state.sliceCount;
    this.marker.setAttribute("x", this.index * width + (width - this.markerWidth()) / 2);
  }

  applyState(state, { initial = false } = {}) {
    const before = this.state;
    this.state = state;
    const countChanged = initial || before.sliceCount !== state.sliceCount;
    const analysisChanged = initial || (before.analysis && before.analysis.id) !== (state.analysis && state.analysis.id);
    this.root.dataset.status = state.status;
    this.emptyMessage.hidden = state.sliceCount > 0;
    this.slider.disabled = state.sliceCount === 0;
    this.slider.max = String(Math.max(state.sliceCount, 1));
    this.overlayToggle.disabled = !(state.analysis && state.analysis.maskUrl);
    if (countChanged) this.preloaded.clear();
    if (analysisChanged) {
      this.drawPlot();
      if (initial && state.analysis && Number.isInteger(state.analysis.largestSlice)) {
        this.index = state.analysis.largestSlice;
      }
    }
    if (initial && Number.isInteger(state.startSlice)) this.index = state.startSlice;
    if (countChanged || analysisChanged) this.show(this.index);
    this.root.dispatchEvent(new CustomEvent("viewer:state", { detail: state, bubbles: true }));
  }

  async poll() {
    while (this.state.processing) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MILLISECONDS));
      try {
        const response = await fetch(this.root.dataset.stateUrl, { headers: { Accept: "application/json" } });
        if (response.ok) this.applyState(await response.json());
      } catch (error) {
        // A dropped connection is retried on the next tick; the page keeps showing what it has.
      }
    }
  }
}

document.querySelectorAll("[data-viewer]").forEach((root) => {
  root.sliceViewer = new SliceViewer(root);
});
