// "?" opens the keyboard help (a native modal <dialog>: focus stays inside, Escape closes it, and focus
// returns to where it was). Shared by the inbox and the message page.
(function () {
  "use strict";
  const dialog = document.getElementById("keys-help");
  if (!dialog) return;
  function open() {
    if (dialog.open) return;
    dialog.showModal();
    document.getElementById("keys-help-close").focus();
  }
  document.querySelectorAll("[data-keys-help]").forEach((b) => b.addEventListener("click", open));
  document.addEventListener("keydown", (e) => {
    if (e.key !== "?" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" && t.type !== "checkbox" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    e.preventDefault();
    open();
  });
})();
