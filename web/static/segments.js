// Live count while a segment's filter is edited: asks the server after each change, shows the number.
(function () {
  const form = document.getElementById("segment-form");
  if (!form) return;
  const out = document.getElementById("segment-count");
  let timer = null;
  function refresh() {
    const params = new URLSearchParams(new FormData(form));
    params.delete("segment");
    params.delete("edited");
    fetch(form.dataset.countUrl + "?" + params.toString(), {credentials: "same-origin"})
      .then(r => r.json())
      .then(data => { out.textContent = data.error ? "—" : data.count.toLocaleString("en-US"); out.title = data.error || ""; })
      .catch(() => {});
  }
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(refresh, 100); });
})();
