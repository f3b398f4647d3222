// Slice viewer: scrolls a series rendered server-side as PNGs (see scans/viewer.py).
// Wheel, keys, slider and vertical drag (touch) move through the slices; neighbours are preloaded so scrolling stays smooth;
// while the series is still being processed the viewer polls its state and picks up the analysis.

const PRELOAD_RADIUS = 3;
const PAGE_STEP = 10;
const DRAG_PIXELS_PER_SLICE = 12;
const POLL_MILLISECONDS = 3000;
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
    this.preloaded = new Map();
    this.index = 0;
    this.wheelRemainder = 0;
    this.state = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    this.window = this.checkedWindow();
    this.bindEvents();
    this.applyState(this.state, { initial: true });
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
    // On a tablet (or with a held mouse button) dragging up and down moves through the slices.
    this.stage.addEventListener("pointerdown", (event) => {
      this.dragStart = { y: event.clientY, index: this.index };
      this.stage.setPointerCapture(event.pointerId);
    });
    this.stage.addEventListener("pointermove", (event) => {
      if (!this.dragStart) return;
      this.show(this.dragStart.index + Math.round((event.clientY - this.dragStart.y) / DRAG_PIXELS_PER_SLICE));
    });
    const endDrag = () => { this.dragStart = null; };
    this.stage.addEventListener("pointerup", endDrag);
    this.stage.addEventListener("pointercancel", endDrag);
    this.slider.addEventListener("input", () => this.show(Number(this.slider.value) - 1));
    this.root.querySelectorAll("[data-window-choice]").forEach((choice) => {
      choice.addEventListener("change", () => {
        this.window = this.checkedWindow();
        this.preloaded.clear();
        this.show(this.index);
      });
    });
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
    return this.state.imageUrl.replace("{index}", index).replace("{window}", encodeURIComponent(this.window));
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
