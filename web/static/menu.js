// The phone menu: one real button that shows and hides the navigation (aria-expanded says which).
// Without this script the button stays hidden and the navigation wraps on the page (see style.css).
(function () {
  "use strict";
  var header = document.querySelector("header.top");
  var button = document.getElementById("menu-button");
  var panel = document.getElementById("site-nav");
  if (!header || !button || !panel) return;
  header.classList.add("js-menu");

  function set(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    panel.classList.toggle("open", open);
  }

  button.addEventListener("click", function () {
    set(button.getAttribute("aria-expanded") !== "true");
  });
  // Escape closes the menu from anywhere inside it and gives focus back to the button.
  header.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      set(false);
      button.focus();
    }
  });
})();
