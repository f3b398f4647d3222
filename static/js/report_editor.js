// Report editor: auto-saves the draft while the doctor types, and makes "Sign report" wait for a save
// still on its way, so the revision the sign request carries is the one the server holds.
//
// The sign button belongs to the editor's form, so signing posts the text on screen and the server saves
// and signs it in one step; auto-save only keeps the draft safe in between. Events are caught on the
// document, so an editor swapped in later (the study page refreshes its report panel) works the same.

const AUTOSAVE_DELAY_MILLISECONDS = 1200;
const EDITOR_SELECTOR = "#report-editor";
//: Never sent by auto-save: the signature is only ever posted by the sign button itself.
const SIGNATURE_FIELDS = ["password", "totp_code"];

let timer = null;
let inFlight = null;
let changedDuringSave = false;

function editorOf(element) {
  return element instanceof Element ? element.closest(EDITOR_SELECTOR) : null;
}

function showStatus(form, text, isError = false) {
  const status = form.querySelector("[data-autosave-status]");
  if (!status) return;
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function formContent(form) {
  const data = new FormData(form);
  for (const name of SIGNATURE_FIELDS) data.delete(name);
  return data;
}

async function save(form) {
  if (inFlight) {
    changedDuringSave = true;
    return inFlight;
  }
  timer = null;
  showStatus(form, "Saving…");
  inFlight = fetch(form.dataset.autosaveUrl, {
    method: "POST",
    body: formContent(form),
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  })
    .then(async (response) => {
      const reply = await response.json().catch(() => ({}));
      if (response.ok) {
        form.elements.revision.value = reply.revision;
        showStatus(form, `Draft saved at ${new Date(reply.saved_at).toLocaleTimeString()}.`);
      } else {
        showStatus(form, `Not saved: ${reply.error || "the server refused the draft."}`, true);
      }
    })
    .catch(() => showStatus(form, "Not saved: the portal could not be reached. Your text is still here.", true))
    .finally(() => {
      inFlight = null;
      if (changedDuringSave) {
        changedDuringSave = false;
        schedule(form);
      }
    });
  return inFlight;
}

function schedule(form) {
  clearTimeout(timer);
  timer = setTimeout(() => save(form), AUTOSAVE_DELAY_MILLISECONDS);
  showStatus(form, "Unsaved changes…");
}

function onChange(event) {
  const form = editorOf(event.target);
  if (!form || SIGNATURE_FIELDS.includes(event.target.name)) return;
  schedule(form);
}

document.addEventListener("input", onChange);
document.addEventListener("change", onChange);

document.addEventListener("submit", async (event) => {
  const form = editorOf(event.target);
  if (!form) return;
  // The submitted form carries every field itself: a pending auto-save is no longer needed.
  clearTimeout(timer);
  timer = null;
  if (!inFlight) return;
  event.preventDefault();
  const submitter = event.submitter;
  await inFlight;
  form.requestSubmit(submitter);
});

// Leaving the page with a change not yet sent: send it anyway (the reply is not needed).
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "hidden" || timer === null) return;
  const form = document.querySelector(EDITOR_SELECTOR);
  clearTimeout(timer);
  timer = null;
  if (form) navigator.sendBeacon(form.dataset.autosaveUrl, formContent(form));
});
