// Live progress of an apply-to-all run: polls the run's JSON until it is done.
(function () {
  const box = document.getElementById("run");
  if (!box) return;
  const url = box.dataset.progressUrl;
  function show(data) {
    const bar = document.getElementById("run-progress");
    bar.max = data.total || 1;
    bar.value = data.done;
    document.getElementById("run-percent").textContent = Math.round(100 * data.done / (data.total || 1));
    document.getElementById("run-state").textContent = data.state;
    document.getElementById("run-letters").textContent = data.letters;
    document.getElementById("run-people-answered").textContent = data.letters;
    document.getElementById("run-covered").textContent = data.covered;
    document.getElementById("run-people").textContent = data.people;
    document.getElementById("run-closed").textContent = data.closed;
    document.getElementById("run-skipped").textContent = data.skipped - data.closed;
    document.getElementById("run-answer-queued").textContent = data.messages.answer_queued;
    document.getElementById("run-responded").textContent = data.messages.responded;
    const parts = Object.entries(data.delivery).map(([k, v]) => k.replace("_", " ") + " " + v);
    document.getElementById("run-delivery").textContent = parts.length ? parts.join(" · ") : "—";
    if (data.error) {
      const err = document.getElementById("run-error");
      err.textContent = data.error;
      err.hidden = false;
    }
    if (data.print_ready) document.getElementById("print-pdf").hidden = false;
  }
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(r => r.json()).then(data => {
      show(data);
      const sending = (data.delivery.queued || 0) + (data.delivery.sending || 0);
      if (data.state !== "done" && data.state !== "failed" || sending > 0) setTimeout(poll, 1000);
    }).catch(() => setTimeout(poll, 3000));
  }
  poll();
})();
