// "?" opens the keyboard help (a native modal <dialog>: focus stays inside, Escape closes it, and focus
// returns to where it was). Shared by the inbox and the message page.
(function () {
  "use strict";
  const dialog = document.getElementById("keys-help");
  if (!dialog) return;
  document.addEventListener("keydown", (e) => {
    if (e.key !== "?" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" && t.type !== "checkbox" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    if (dialog.open) return;
    e.preventDefault();
    dialog.showModal();
    document.getElementById("keys-help-close").focus();
  });
})();
