// Study page: when the viewer reports that the analysis finished (or a new one replaced it), the findings
// and the report panel are fetched again and swapped in, so the doctor never has to reload the page.
// The report draft is made by a separate task after the analysis, so its panel is asked for a few more
// times until it appears.

const REPORT_RETRY_MILLISECONDS = 3000;
const REPORT_RETRIES = 20;

const page = document.querySelector("[data-study-page]");

async function refreshFragments() {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return null;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const fragment of document.querySelectorAll("[data-live-fragment]")) {
    // Never pull a form out from under someone typing in it.
    if (fragment.contains(document.activeElement)) continue;
    const replacement = fresh.getElementById(fragment.id);
    if (replacement) fragment.replaceWith(document.adoptNode(replacement));
  }
  return fresh;
}

async function refreshUntilReportExists() {
  for (let attempt = 0; attempt < REPORT_RETRIES; attempt += 1) {
    const fresh = await refreshFragments().catch(() => null);
    const report = fresh && fresh.getElementById("study-report");
    if (report && report.dataset.hasReport === "true") return;
    await new Promise((resolve) => setTimeout(resolve, REPORT_RETRY_MILLISECONDS));
  }
}

if (page) {
  let processing = page.dataset.processing === "true";
  let analysisId = page.dataset.analysisId;
  document.addEventListener("viewer:state", (event) => {
    const state = event.detail;
    const newAnalysisId = state.analysis ? String(state.analysis.id) : "";
    const finished = processing && !state.processing;
    const replaced = newAnalysisId !== analysisId;
    processing = state.processing;
    analysisId = newAnalysisId;
    page.dataset.processing = String(processing);
    if (!finished && !replaced) return;
    // Only a successful analysis leads to a report draft worth waiting for.
    if (state.analysis) refreshUntilReportExists();
    else refreshFragments().catch(() => null);
  });
}
