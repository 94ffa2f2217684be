// Keyboard triage for the inbox: j/k move, x select, a assign, t accept the suggested topic, e close,
// u undo the close, / search, Enter open (? help is keys.js).
(function () {
  "use strict";
  const table = document.getElementById("messages");
  if (!table) return;
  const form = document.getElementById("bulk-form");
  const rows = () => Array.from(table.querySelectorAll("tbody tr[data-id]"));
  const selectedCount = document.getElementById("selected-count");
  const assignee = document.getElementById("bulk-assignee");
  let focus = -1;

  function boxes() { return rows().map((r) => r.querySelector("input[name=ids]")); }
  function refreshSelection() {
    const n = boxes().filter((b) => b.checked).length;
    selectedCount.textContent = n + " selected";
    rows().forEach((r) => r.classList.toggle("selected", r.querySelector("input[name=ids]").checked));
  }
  function setFocus(i) {
    const all = rows();
    if (!all.length) return;
    focus = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((r, j) => r.classList.toggle("focused", j === focus));
    all[focus].scrollIntoView({ block: "nearest" });
  }
  function ensureSelection() {
    // Acting with nothing selected acts on the focused message.
    if (!boxes().some((b) => b.checked) && focus >= 0) {
      rows()[focus].querySelector("input[name=ids]").checked = true;
      refreshSelection();
    }
  }
  function submit(action) {
    const button = form.querySelector("button[name=action][value=" + action + "]");
    if (button) form.requestSubmit(button);
  }

  table.addEventListener("change", refreshSelection);
  document.getElementById("select-all").addEventListener("change", (e) => {
    boxes().forEach((b) => { b.checked = e.target.checked; });
    refreshSelection();
  });
  table.addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-id]");
    if (!row || e.target.closest("input, a")) return;
    window.location = row.dataset.href;
  });
  // Typing in the focused select only chooses (a letter jumps to the first staffer with it); nothing is
  // sent until Enter or the Assign button, so a keyboard user searching the list never assigns by accident.
  assignee.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && assignee.value) { e.preventDefault(); ensureSelection(); submit("assign"); }
    if (e.key === "Escape") { assignee.blur(); }
  });

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || document.querySelector("dialog[open]")) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" && t.type !== "checkbox" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    switch (e.key) {
      case "j": setFocus(focus + 1); break;
      case "k": setFocus(focus - 1); break;
      case "x":
        if (focus >= 0) { const b = rows()[focus].querySelector("input[name=ids]"); b.checked = !b.checked; refreshSelection(); }
        break;
      case "a": ensureSelection(); assignee.focus(); break;
      case "t": ensureSelection(); if (boxes().some((b) => b.checked)) submit("accept_suggestion"); break;
      case "e": ensureSelection(); if (boxes().some((b) => b.checked)) submit("close"); break;
      case "u": { const undo = document.getElementById("undo-close"); if (undo) undo.click(); else return; break; }
      case "/": document.getElementById("q").focus(); break;
      case "Enter": if (focus >= 0) window.location = rows()[focus].dataset.href; else return; break;
      default: return;
    }
    e.preventDefault();
  });
  refreshSelection();
  if (rows().length) setFocus(0);
})();
