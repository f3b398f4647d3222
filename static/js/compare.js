// Side-by-side reading of a study and a prior: scrolling one viewer moves the other to the slice nearest
// to the same location along the slice normal (both series are in the patient's coordinate system).

const viewers = [...document.querySelectorAll("[data-compare] [data-viewer]")];
let following = false;

function nearestIndex(locations, location) {
  let best = null;
  locations.forEach((value, index) => {
    if (!Number.isFinite(value)) return;
    if (best === null || Math.abs(value - location) < Math.abs(locations[best] - location)) best = index;
  });
  return best;
}

viewers.forEach((root) => {
  root.addEventListener("viewer:slice", (event) => {
    if (following || !Number.isFinite(event.detail.location)) return;
    following = true;
    try {
      viewers.filter((other) => other !== root && other.sliceViewer).forEach((other) => {
        const index = nearestIndex(other.sliceViewer.state.sliceLocations, event.detail.location);
        if (index !== null && index !== other.sliceViewer.index) other.sliceViewer.show(index);
      });
    } finally {
      following = false;
    }
  });
});
