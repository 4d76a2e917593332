// The hosted form with JavaScript: local times, inline validation, and submission
// without a page reload. Without JavaScript the form posts and the server answers.
(function () {
  var form = document.getElementById("g2w-form");
  if (!form) return;
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var start = new Date(t.getAttribute("datetime"));
    var end = new Date(t.getAttribute("data-end"));
    var opts = { dateStyle: "full", timeStyle: "short" };
    try {
      t.textContent = start.toLocaleString(undefined, opts) + " – " +
        end.toLocaleTimeString(undefined, { timeStyle: "short", timeZoneName: "short" });
    } catch (e) { /* keep the server's text */ }
  });

  function setError(name, message) {
    var el = document.getElementById(name + "-error");
    var input = document.getElementById(name);
    if (el) el.textContent = message || "";
    if (input) {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  function check() {
    var errors = {};
    form.querySelectorAll("input[type=text], input[type=email], select, textarea").forEach(function (el) {
      if (el.name === "website") return;
      var v = el.value.trim();
      if (el.required && !v) errors[el.name] = "is required";
      else if (el.maxLength > 0 && v.length > el.maxLength) errors[el.name] = "is longer than " + el.maxLength + " characters";
      else if (el.type === "email" && v && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v)) errors[el.name] = "is not a valid email address";
    });
    form.querySelectorAll("fieldset[aria-required=true]").forEach(function (fs) {
      if (!fs.querySelector("input:checked")) errors[fs.id] = "an answer is required";
    });
    return errors;
  }

  function show(errors) {
    form.querySelectorAll(".error").forEach(function (p) { p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var first = null;
    Object.keys(errors).forEach(function (name) {
      setError(name, errors[name]);
      if (!first) first = document.getElementById(name);
    });
    if (first) (first.querySelector ? (first.querySelector("input") || first) : first).focus();
  }

  form.querySelectorAll("input, select, textarea").forEach(function (el) {
    el.addEventListener("blur", function () {
      var errors = check();
      var name = el.type === "radio" ? el.name : el.id;
      setError(name, errors[name]);
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var errors = check();
    if (Object.keys(errors).length) { show(errors); return; }
    var body = { responses: [] };
    new FormData(form).forEach(function (value, name) {
      if (name.indexOf("q_") === 0) {
        var input = form.querySelector("[name='" + name + "']");
        var entry = { questionKey: name.slice(2) };
        if (input && input.type === "radio") entry.answerKey = value; else entry.responseText = value;
        if (value) body.responses.push(entry);
      } else {
        body[name] = value;
      }
    });
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
      .then(function (res) {
        var status = res[0], j = res[1];
        button.disabled = false;
        if (status === 400 && j.fields) { show(j.fields); return; }
        var result = document.getElementById("g2w-result");
        var box = document.createElement("div");
        box.className = "done";
        var h = document.createElement("h2");
        var p = document.createElement("p");
        if (j.status === "registered" || j.status === "already_registered") {
          h.textContent = j.status === "registered" ? "You're registered" : "You were already registered";
          // Only web links: a javascript: URL from a broken upstream must not become one.
          if (/^https?:\/\//i.test(j.joinUrl || "")) {
            p.textContent = "Join the webinar with your personal link: ";
            var a = document.createElement("a");
            a.id = "join-url"; a.href = j.joinUrl; a.textContent = j.joinUrl; a.className = "join";
            p.appendChild(a);
          } else {
            p.textContent = "Your confirmation email has the link to join.";
          }
        } else if (j.status === "queued" || j.status === "pending_validation") {
          h.textContent = "Thank you!";
          p.textContent = "Your registration is being processed; the confirmation email with your link to join will arrive shortly.";
        } else {
          h.textContent = "Sorry";
          p.textContent = j.message || "We could not complete your registration. Please try again.";
        }
        box.appendChild(h); box.appendChild(p);
        result.appendChild(box);
        if (j.status) form.hidden = true;
        result.focus();
      })
      .catch(function () {
        button.disabled = false;
        document.getElementById("g2w-result").textContent = "The registration could not be sent. Please try again.";
      });
  });
})();
// Inside embed.js's iframe: tell the page how tall the form is.
if (window.parent !== window && window.ResizeObserver) {
  var sendHeight = function () {
    window.parent.postMessage({ g2wHeight: document.documentElement.scrollHeight }, "*");
  };
  new ResizeObserver(sendHeight).observe(document.body);
  sendHeight();
}
