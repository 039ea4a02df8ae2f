// Build page: refresh the state and task table while the build runs, then reload once for the buttons.
(function () {
  "use strict";
  var POLL_MS = 3000;

  function statusBox() { return document.getElementById("build-status"); }

  function poll() {
    var url = window.location.pathname + "?partial=status";
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return schedule(); }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.firstElementChild;
        statusBox().replaceWith(fresh);
        if (fresh.dataset.finished === "1") {
          window.location.reload(); // the cancel button turns into delete, and so on
        } else {
          schedule();
        }
      })
      .catch(schedule);
  }

  function schedule() { window.setTimeout(poll, POLL_MS); }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });

  var box = statusBox();
  if (box && box.dataset.finished === "0") { schedule(); }
})();
