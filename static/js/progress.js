// Live analysis progress on the worklist and the study page.
//
// Mark up an element per series with the URL of its progress JSON (ml.views.series_progress):
//   <span data-series-progress="/series/12/progress.json" aria-live="polite">Queued</span>
// or a container for a whole study (ml.views.study_progress), with one element per series inside:
//   <tbody data-study-progress="/studies/3/progress.json">
//     <td data-series-id="12">Queued</td> ...
// Optional children are filled in when present: [data-progress-status], [data-progress-count],
// [data-progress-reason], [data-progress-class] and a <progress> bar; without them the element's
// own text says e.g. "Analysing: 40 of 100 slices". The element's data-status attribute always holds
// the status, for styling. Polling stops once every series has reached a final state.

const PROGRESS_POLL_MILLISECONDS = 2500;
const FINAL_STATUSES = new Set(["analysed", "reported", "failed", "no_model"]);
// Final without a result: the reason (why it failed, or that no model reads this kind of series) is shown.
const UNANALYSED_STATUSES = new Set(["failed", "no_model"]);
const CLASS_LABELS = {
  adenocarcinoma: "Adenocarcinoma",
  large_cell_carcinoma: "Large cell carcinoma",
  squamous_cell_carcinoma: "Squamous cell carcinoma",
  normal: "Normal",
};

function progressSentence(progress) {
  if (progress.status === "analysing" && progress.slices_total) {
    return `${progress.status_display}: ${progress.slices_done} of ${progress.slices_total} slices`;
  }
  if (UNANALYSED_STATUSES.has(progress.status) && progress.failure_reason) {
    return `${progress.status_display}: ${progress.failure_reason}`;
  }
  if (progress.predicted_class) {
    const label = CLASS_LABELS[progress.predicted_class] || progress.predicted_class;
    const demo = progress.is_demo_model ? " (demo model, not for clinical use)" : "";
    return `${progress.status_display}: ${label}${demo}`;
  }
  return progress.status_display;
}

function fill(element, selector, text) {
  const target = element.querySelector(selector);
  if (target) target.textContent = text;
  return Boolean(target);
}

function showProgress(element, progress) {
  element.dataset.status = progress.status;
  const bar = element.querySelector("progress");
  if (bar) {
    bar.max = progress.slices_total || 1;
    bar.value = FINAL_STATUSES.has(progress.status) && !UNANALYSED_STATUSES.has(progress.status)
      ? bar.max : progress.slices_done;
  }
  const detailed = [
    fill(element, "[data-progress-status]", progress.status_display),
    fill(element, "[data-progress-count]",
      progress.slices_total ? `${progress.slices_done} of ${progress.slices_total} slices` : ""),
    fill(element, "[data-progress-reason]", progress.failure_reason || ""),
    fill(element, "[data-progress-class]", progress.predicted_class
      ? (CLASS_LABELS[progress.predicted_class] || progress.predicted_class) : ""),
  ].some(Boolean);
  if (!detailed && !bar) element.textContent = progressSentence(progress);
}

async function fetchProgress(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`progress ${response.status}`);
  return response.json();
}

async function pollSeries(element) {
  const url = element.dataset.seriesProgress;
  try {
    const progress = await fetchProgress(url);
    showProgress(element, progress);
    if (FINAL_STATUSES.has(progress.status)) return;
  } catch (error) {
    // A missed poll (network hiccup, server restart) is retried on the next tick.
  }
  window.setTimeout(() => pollSeries(element), PROGRESS_POLL_MILLISECONDS);
}

async function pollStudy(container) {
  const url = container.dataset.studyProgress;
  let unfinished = true;
  try {
    const study = await fetchProgress(url);
    unfinished = false;
    for (const progress of study.series) {
      for (const element of container.querySelectorAll(`[data-series-id="${progress.id}"]`)) {
        showProgress(element, progress);
      }
      if (!FINAL_STATUSES.has(progress.status)) unfinished = true;
    }
  } catch (error) {
    unfinished = true;
  }
  if (unfinished) window.setTimeout(() => pollStudy(container), PROGRESS_POLL_MILLISECONDS);
}

function startProgress(root = document) {
  root.querySelectorAll("[data-series-progress]").forEach(pollSeries);
  root.querySelectorAll("[data-study-progress]").forEach(pollStudy);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => startProgress());
} else {
  startProgress();
}
