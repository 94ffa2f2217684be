// The paragraph library's insert buttons, enhanced: insert the paragraph at the cursor of the letter's
// text box (as its own paragraph, blank lines around it) instead of posting the form. Without this
// script the same buttons post the form and the server inserts the paragraph before the signature.
(function () {
  const placed = new WeakSet();  // text boxes where the writer has put the cursor
  const SIGNATURE_AT_END = /(^|\n[ \t]*\n)\s*(\{\{\s*office\.signature\s*\}\}\s*)$/;

  function insertAt(value, start, end, text) {
    const before = value.slice(0, start).replace(/\s+$/, "");
    const after = value.slice(end).replace(/^\s+/, "");
    return {value: (before ? before + "\n\n" : "") + text + (after ? "\n\n" + after : ""),
            caret: (before ? before.length + 2 : 0) + text.length};
  }

  function beforeSignature(value, text) {
    const normal = value.replace(/\r\n?/g, "\n");
    const match = SIGNATURE_AT_END.exec(normal);
    const start = match ? match.index : normal.length;
    return insertAt(normal, start, start, text);
  }

  document.addEventListener("focusin", function (event) {
    if (event.target.tagName === "TEXTAREA") placed.add(event.target);
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.insert-paragraph");
    if (!button) return;
    const box = document.getElementById(button.dataset.target);
    if (!box) return;  // no text box on this page: let the form post
    event.preventDefault();
    const text = button.dataset.text;
    const result = placed.has(box) ? insertAt(box.value, box.selectionStart, box.selectionEnd, text)
                                   : beforeSignature(box.value, text);
    box.value = result.value;
    box.focus();
    box.setSelectionRange(result.caret, result.caret);
    box.dispatchEvent(new Event("input", {bubbles: true}));
  });
})();
