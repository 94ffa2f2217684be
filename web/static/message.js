// Keyboard triage on a message: t fill in the suggestion, a go to "Assigned to", s save and next,
// e close and next (with Undo), u undo, n/j next, p/k previous, i back to the list, r reply (? help is keys.js).
(function () {
  "use strict";
  const form = document.getElementById("triage-form");
  if (!form) return;
  const suggestion = document.getElementById("use-suggestion");

  function useSuggestion() {
    // Fills the form only: nothing is saved until Save (or s), so the page never shows as coded what is not.
    if (!suggestion) return false;
    document.getElementById("triage-topic").value = suggestion.dataset.topic;
    if (suggestion.dataset.stance) document.getElementById("triage-stance").value = suggestion.dataset.stance;
    form.classList.add("edited");
    document.getElementById("triage-assignee").focus();
    return true;
  }
  if (suggestion) {
    suggestion.hidden = false;
    suggestion.addEventListener("click", useSuggestion);
  }
  form.addEventListener("change", () => form.classList.add("edited"));
  // Enter in a select of this form saves and moves on; typing letters there only chooses.
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.tagName === "SELECT") {
      e.preventDefault();
      form.requestSubmit(document.getElementById("save-next"));
    }
  });

  function follow(id) {
    const link = document.getElementById(id);
    if (!link) return false;
    window.location = link.href;
    return true;
  }
  function click(id) {
    const el = document.getElementById(id);
    if (!el) return false;
    el.click();
    return true;
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || document.querySelector("dialog[open]")) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    let done;
    switch (e.key) {
      case "t": done = useSuggestion(); break;
      case "a": document.getElementById("triage-assignee").focus(); done = true; break;
      case "s": form.requestSubmit(document.getElementById("save-next")); done = true; break;
      case "e": {
        const close = document.getElementById("close-form");
        if (close) { close.requestSubmit(close.querySelector("button[name=value]")); done = true; }
        break;
      }
      case "u": done = click("undo-close"); break;
      case "n": case "j": done = follow("next-message"); break;
      case "p": case "k": done = follow("previous-message"); break;
      case "i": done = follow("back-to-list"); break;
      case "r": done = follow("reply"); break;
      default: return;
    }
    if (done) e.preventDefault();
  });
})();
