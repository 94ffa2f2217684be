// Progress of a job (a CSV import, a long report): polls its JSON, fills [data-field] elements,
// and reloads the page once the job is finished so the result shows.
(function () {
  const box = document.getElementById("job-progress");
  if (!box) return;
  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(r => r.json()).then(data => {
      for (const el of box.querySelectorAll("[data-field]")) {
        const value = data[el.dataset.field];
        if (value !== undefined && value !== null) el.textContent = value;
      }
      const bar = box.querySelector("progress");
      if (bar) { bar.max = data.total || 100; bar.value = data.done || 0; }
      if (data.state === "done" || data.state === "failed") window.location.reload();
      else setTimeout(poll, 1000);
    }).catch(() => setTimeout(poll, 3000));
  }
  poll();
})();
