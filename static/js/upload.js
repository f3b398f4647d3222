// Bulk upload: many files, a whole folder, or zip archives (chosen or dropped), sent in chunks into one batch.
//
// The page's form works without JavaScript (one POST, then the batch summary). With it, this script
// 1. creates the batch (POST data-create-url with the chosen patient),
// 2. sends the files in chunks of a few files / megabytes (POST files_url), showing a progress bar per
//    file and for the whole upload, and each file's outcome as its chunk's answer arrives,
// 3. closes the batch (POST close_url), which completes the series, and links to the summary page,
//    which shows the same outcomes after a reload.
// The request sequence is documented in scans/views.py.

const CHUNK_MAX_FILES = 20;
const CHUNK_MAX_BYTES = 32 * 1024 * 1024;
const RETRIES_PER_CHUNK = 2;

const form = document.getElementById("upload-form");
const panel = document.getElementById("upload-progress");
const statusLine = document.getElementById("upload-status");
const totalBar = document.getElementById("upload-total");
const rowsBody = document.getElementById("upload-file-rows");
const doneLine = document.getElementById("upload-done");
const detailLink = document.getElementById("upload-detail-link");
const submitButton = document.getElementById("upload-submit");
const dropZone = document.getElementById("upload-drop-zone");
const droppedStatus = document.getElementById("upload-dropped");

// Files dragged onto the drop zone, with their path inside a dropped folder.
const droppedFiles = [];
const droppedPaths = new WeakMap();

function csrfToken() {
  return form.querySelector("input[name=csrfmiddlewaretoken]").value;
}

function selectedFiles() {
  const files = [...droppedFiles];
  form.querySelectorAll("input[type=file]").forEach((input) => {
    for (const file of input.files) files.push(file);
  });
  return files;
}

function displayName(file) {
  return droppedPaths.get(file) || file.webkitRelativePath || file.name;
}

function readDirectory(reader) {
  // readEntries answers in batches (about 100 entries); call it until it answers with none.
  return new Promise((resolve, reject) => {
    const entries = [];
    const readBatch = () => reader.readEntries((batch) => {
      if (!batch.length) return resolve(entries);
      entries.push(...batch);
      readBatch();
    }, reject);
    readBatch();
  });
}

async function filesOfEntry(entry) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    droppedPaths.set(file, entry.fullPath.replace(/^\//, ""));
    return [file];
  }
  const children = await readDirectory(entry.createReader());
  return (await Promise.all(children.map(filesOfEntry))).flat();
}

async function dropFiles(event) {
  event.preventDefault();
  dropZone.classList.remove("drop-zone-active");
  const entries = [...event.dataTransfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  const files = entries.length
    ? (await Promise.all(entries.map(filesOfEntry))).flat()
    : [...event.dataTransfer.files];
  droppedFiles.push(...files);
  const count = droppedFiles.length;
  droppedStatus.textContent = `${count} dropped file${count === 1 ? "" : "s"} ready to upload.`;
}

function enableDropZone() {
  dropZone.hidden = false;
  dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropZone.classList.add("drop-zone-active");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("drop-zone-active"));
  dropZone.addEventListener("drop", dropFiles);
}

function chunksOf(entries) {
  const chunks = [];
  let current = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length && (current.length >= CHUNK_MAX_FILES || bytes + entry.file.size > CHUNK_MAX_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.file.size;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

function addRow(file) {
  const row = document.createElement("tr");
  const name = document.createElement("td");
  name.className = "file-name";
  name.textContent = displayName(file);
  const progressCell = document.createElement("td");
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${displayName(file)}`);
  progressCell.append(bar);
  const outcome = document.createElement("td");
  outcome.textContent = "Waiting";
  row.append(name, progressCell, outcome);
  rowsBody.append(row);
  return { file, bar, outcome };
}

function badge(outcome, text) {
  const span = document.createElement("span");
  span.className = `badge badge-outcome-${outcome}`;
  span.textContent = text;
  return span;
}

function showOutcome(entry, results) {
  entry.bar.value = 1;
  entry.outcome.replaceChildren();
  if (results.length === 1 && results[0].name === displayName(entry.file)) {
    // A single file (a zip archive answers with one result per entry, named archive/entry).
    const [result] = results;
    entry.outcome.append(badge(result.outcome, result.outcome));
    if (result.reason) entry.outcome.append(` ${result.reason}`);
    return;
  }
  // A zip archive: one result per entry.
  const counts = {};
  for (const result of results) counts[result.outcome] = (counts[result.outcome] || 0) + 1;
  entry.outcome.append(Object.entries(counts).map(([outcome, count]) => `${count} ${outcome}`).join(", "));
  const rejected = results.filter((result) => result.outcome === "rejected");
  if (rejected.length) {
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "Rejected entries";
    const list = document.createElement("ul");
    for (const result of rejected) {
      const item = document.createElement("li");
      item.textContent = `${result.name}: ${result.reason}`;
      list.append(item);
    }
    details.append(summary, list);
    entry.outcome.append(details);
  }
}

function showFailure(entry, message) {
  entry.outcome.replaceChildren(badge("rejected", "not sent"), ` ${message}`);
}

function post(url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.responseType = "json";
    if (onProgress) request.upload.addEventListener("progress", (event) => onProgress(event.loaded));
    request.addEventListener("load", () => resolve({ status: request.status, body: request.response }));
    request.addEventListener("error", () => reject(new Error("The connection was lost.")));
    request.send(body);
  });
}

async function sendChunk(filesUrl, chunk, reportBytes) {
  const body = new FormData();
  for (const entry of chunk) {
    body.append("files", entry.file, entry.file.name);
    body.append("paths", displayName(entry.file));
  }
  const onProgress = (loaded) => {
    // Spread the request's bytes over its files in order: each bar fills as its part is sent.
    let offset = 0;
    for (const entry of chunk) {
      const size = Math.max(entry.file.size, 1);
      entry.bar.value = Math.min(Math.max((loaded - offset) / size, 0), 1);
      offset += entry.file.size;
    }
    reportBytes(Math.min(loaded, offset));
  };
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await post(filesUrl, body, onProgress);
      if (answer.status === 200 && answer.body && answer.body.files) return answer.body.files;
      const detail = (answer.body && answer.body.detail) || `the server answered ${answer.status}`;
      if (answer.status < 500 || attempt >= RETRIES_PER_CHUNK) throw new Error(detail);
    } catch (error) {
      if (attempt >= RETRIES_PER_CHUNK) throw error;
    }
  }
}

function patientErrors(body) {
  const errors = (body && body.errors) || {};
  return Object.values(errors).flat().map((error) => error.message).join(" ") || "The upload could not start.";
}

async function upload(event) {
  const files = selectedFiles();
  if (!files.length || !window.FormData || !window.XMLHttpRequest) return;
  event.preventDefault();
  submitButton.disabled = true;
  panel.hidden = false;
  rowsBody.replaceChildren();
  doneLine.hidden = true;
  const entries = files.map(addRow);
  const totalBytes = Math.max(files.reduce((sum, file) => sum + file.size, 0), 1);
  let sentBytes = 0;
  statusLine.textContent = `Starting the upload of ${files.length} files…`;

  const start = new FormData();
  start.append("patient", form.querySelector("[name=patient]").value);
  const created = await post(form.dataset.createUrl, start).catch((error) => ({ status: 0, body: { detail: error.message } }));
  if (created.status !== 201) {
    statusLine.textContent = created.status === 400 ? patientErrors(created.body) : created.body?.detail || "The upload could not start.";
    submitButton.disabled = false;
    return;
  }
  const batch = created.body;
  detailLink.href = batch.detail_url;

  const chunks = chunksOf(entries);
  let filesDone = 0;
  for (const chunk of chunks) {
    statusLine.textContent = `Uploading: ${filesDone} of ${files.length} files done.`;
    try {
      const answers = await sendChunk(batch.files_url, chunk, (loaded) => {
        totalBar.value = (sentBytes + loaded) / totalBytes;
      });
      answers.forEach((answer, index) => showOutcome(chunk[index], answer.results));
    } catch (error) {
      chunk.forEach((entry) => showFailure(entry, error.message));
    }
    sentBytes += chunk.reduce((sum, entry) => sum + entry.file.size, 0);
    totalBar.value = sentBytes / totalBytes;
    filesDone += chunk.length;
  }

  const closed = await post(batch.close_url, new FormData()).catch(() => null);
  totalBar.value = 1;
  if (closed && closed.status === 200) {
    const counts = closed.body.counts;
    statusLine.textContent = `Done: ${counts.stored} stored, ${counts.duplicate} already stored, ${counts.rejected} rejected.`;
  } else {
    statusLine.textContent = "The files were sent, but the upload could not be finished; open the summary and try again.";
  }
  droppedFiles.length = 0;
  droppedStatus.textContent = "";
  doneLine.hidden = false;
  submitButton.disabled = false;
  detailLink.focus();
}

form.addEventListener("submit", upload);
enableDropZone();
