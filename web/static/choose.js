// Answer pages: choosing a letter shows it as three real recipients will receive it, and a letter that
// does not fit asks for the confirmation box before the form is sent (the server checks it again).
(function () {
  "use strict";
  document.querySelectorAll("form.choose-letter").forEach(function (form) {
    var slot = form.querySelector("#letter-preview");
    var confirmBox = form.querySelector("#confirm-mismatch");
    var base = form.getAttribute("data-preview-url");

    function chosen() { return form.querySelector("input[name=version_id]:checked"); }

    function show() {
      var radio = chosen();
      if (!radio || !slot) { return; }
      if (confirmBox) {
        var mismatch = radio.getAttribute("data-fits") === "0";
        confirmBox.required = mismatch;
        confirmBox.closest(".mismatch-confirm").classList.toggle("needed", mismatch);
      }
      slot.textContent = "Loading the preview…";
      fetch(base + (base.indexOf("?") < 0 ? "?" : "&") + "version_id=" + encodeURIComponent(radio.value),
            {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
        .then(function (html) { slot.innerHTML = html; })
        .catch(function (e) { slot.textContent = "The preview could not be loaded (" + e.message + ")."; });
    }

    form.addEventListener("change", function (event) {
      if (event.target.name !== "version_id") { return; }
      var planned = form.querySelector("input[name=planned_version]");
      if (form.getAttribute("data-recount") === "1" && planned && planned.value !== event.target.value) {
        // A batch's numbers depend on the letter (who has had it already): count again for this one.
        var url = new URL(window.location.href);
        url.searchParams.set("version_id", event.target.value);
        window.location.assign(url.toString());
        return;
      }
      show();
    });
    show();
  });
})();
