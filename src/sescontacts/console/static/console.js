// The console's only script: everything works without it, this makes it quicker to use.
// Loaded as a file (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";
  var csrf = document.body ? document.body.dataset.csrf : null;
  // What needs this script (Copy buttons, upload progress) is shown only once it runs: see console.css.
  document.documentElement.classList.add("js");

  // htmx sends the CSRF token as a header on every request it makes.
  document.addEventListener("htmx:configRequest", function (event) {
    if (!csrf) csrf = document.body.dataset.csrf;
    event.detail.headers["X-CSRF-Token"] = csrf;
  });

  // A dialog's content arrived: open the dialog (Import Contacts, AWS API).
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = document.getElementById("dialog");
    if (dialog && event.detail.target && event.detail.target.id === "dialog-body" && !dialog.open) {
      dialog.showModal();
      var first = dialog.querySelector("input, button, a[href]");
      if (first) first.focus();
    }
  });

  // An upload shows how much of it is sent (a big file takes a while before the server can check it).
  document.addEventListener("htmx:beforeSend", function (event) {
    var form = event.detail.elt;
    var box = form && form.querySelector ? form.querySelector("[data-upload-progress]") : null;
    if (!box) return;
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-upload-text]");
    box.hidden = false;
    event.detail.xhr.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable || !progress.total) return;
      var sent = progress.loaded, total = progress.total;
      bar.max = total;
      bar.value = sent;
      text.textContent = (sent < total ? "Uploading: " : "Uploaded ") + size(sent) + " of " + size(total) +
        " (" + Math.floor((100 * sent) / total) + "%)" + (sent < total ? "" : ", checking every row…");
    });
  });

  function size(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MiB";
    return Math.ceil(bytes / 1024).toLocaleString("en") + " KiB";
  }

  // Error responses (400 with inline messages, 413 upload too large) still carry a page to show.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 413 || status === 422 || status === 404) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    if (!target) return;
    var close = target.closest("[data-close-dialog]");
    if (close) {
      var dialog = close.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    var copy = target.closest("[data-copy]");
    if (copy) {
      var text = copy.getAttribute("data-copy");
      var done = function () {
        var before = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = before; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
      } else {
        fallbackCopy(text);
        done();
      }
    }
  });

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more we can do */ }
    document.body.removeChild(area);
  }

  // Closing the dialog after a completed step leaves its URL in the bar; put the contacts URL back.
  document.addEventListener("close", function (event) {
    if (event.target.id === "dialog" && location.pathname.indexOf("/import") === 0) {
      location.assign("/");
    }
  }, true);

  // The status filter means "unsubscribed from all" for the whole list and "opted out" for a topic.
  document.addEventListener("change", function (event) {
    if (event.target.id !== "topic") return;
    var topic = event.target.value;
    document.querySelectorAll("#status option[data-list-label]").forEach(function (option) {
      option.textContent = topic ? option.dataset.topicLabel : option.dataset.listLabel;
    });
  });

  // Row selection: "select page" toggles every row; "all N matching" implies the whole page too.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.id === "select-page" || el.id === "select-all-matching") {
      var form = el.closest("form");
      form.querySelectorAll("input[name=email]").forEach(function (box) { box.checked = el.checked; });
      if (el.id === "select-all-matching") {
        var page = form.querySelector("#select-page");
        if (page) page.checked = el.checked;
      }
    }
  });
})();
