// Live log: fetch builder-live.log from the byte offset already shown (HTTP Range) until the task ends.
// The state endpoint tells the log's current size, so a read is made only when there are new
// bytes: no 404 before the log exists and no 416 past its end (both show as console errors).
// When the results are served from another host (RESULTS_URL) the size is unknown here
// (`log_sizes` is null): every poll then asks for the bytes past the offset.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var FINAL = ["succeeded", "failed", "canceled", "skipped", "forked"];
  var pre = document.getElementById("live-log");
  if (!pre) { return; }
  var logUrl = pre.dataset.logUrl;
  var stateUrl = pre.dataset.stateUrl;
  var taskId = pre.dataset.task;
  var note = document.getElementById("log-note");
  var badge = document.getElementById("task-state");
  var offset = 0;
  var decoder = new TextDecoder("utf-8");

  function readMore(task) {
    var size = task.size;
    if (task.sized && (size === null || size === undefined || size <= offset)) {
      return Promise.resolve(false);
    }
    var headers = offset > 0 ? { Range: "bytes=" + offset + "-" } : {};
    return fetch(logUrl, { headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status === 206 || (response.status === 200 && offset === 0)) {
        return response.arrayBuffer().then(function (buffer) {
          if (buffer.byteLength === 0) { return false; }
          var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.textContent += decoder.decode(buffer, { stream: true });
          offset += buffer.byteLength;
          if (atBottom) { pre.scrollTop = pre.scrollHeight; }
          return true;
        });
      }
      return false;
    });
  }

  // Once the task is final its log is stored gzipped and a range of it would count
  // compressed bytes behind some servers (nginx's gzip_static): read it whole instead.
  function readAll() {
    return fetch(logUrl, { cache: "no-store" }).then(function (response) {
      if (!response.ok) { return; }
      return response.text().then(function (text) {
        pre.textContent = text;
        pre.scrollTop = pre.scrollHeight;
      });
    });
  }

  function taskState() {
    return fetch(stateUrl, { cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var sized = data.log_sizes !== null && data.log_sizes !== undefined;
        return { state: data.tasks[taskId], sized: sized, size: sized ? data.log_sizes[taskId] : null };
      });
  }

  function step() {
    // Ask for the state first: a log read after the task ended is then complete.
    taskState().then(function (task) {
      var state = task.state;
      if (badge && state) { badge.textContent = state; badge.className = "state state-" + state; }
      if (FINAL.indexOf(state) >= 0) {
        return readAll().then(function () {
          if (note) { note.textContent = "The task has " + state + "; the log is complete."; }
          pre.dataset.complete = "1";
        });
      }
      return readMore(task).then(function (grew) {
        window.setTimeout(step, grew ? 500 : POLL_MS);
      });
    }).catch(function () { window.setTimeout(step, POLL_MS); });
  }

  step();
})();
