// The hosted form with JavaScript: local times, inline validation, and submission
// without a page reload. Without JavaScript the form posts and the server answers.
(function () {
  var form = document.getElementById("g2w-form");
  if (!form) return;
  // The session times stay as the server wrote them (the webinar's own zone, named);
  // a visitor elsewhere also sees their own time beside them.
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var yours = t.nextElementSibling;
    if (!yours) return;
    try {
      var start = new Date(t.getAttribute("datetime"));
      var end = new Date(t.getAttribute("data-end"));
      var when = { dateStyle: "full", timeStyle: "short" };
      var there = Object.assign({ timeZone: t.getAttribute("data-zone") }, when);
      // The same wall-clock text in both zones: nothing to add.
      if (start.toLocaleString(undefined, when) === start.toLocaleString(undefined, there) &&
          end.toLocaleString(undefined, when) === end.toLocaleString(undefined, there)) return;
      // timeStyle and timeZoneName may not be combined: name the parts instead.
      yours.textContent = "Your time: " + start.toLocaleString(undefined, when) + " – " +
        end.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit", timeZoneName: "short" });
      yours.hidden = false;
    } catch (e) { /* the webinar's own time stands */ }
  });

  var submitted = false;
  var touched = {};

  // "Email is required." / “Why?”: an answer is required. (as the server words them)
  function sentence(name, message) {
    message = String(message).replace(/\.$/, "");
    var field = document.getElementById(name);
    if (field && field.tagName === "FIELDSET") {
      var legend = field.querySelector("legend");
      return "\u201c" + text(legend) + "\u201d: " + message + ".";
    }
    var label = form.querySelector("label[for='" + name + "']");
    return (label ? text(label) : name) + " " + message + ".";
  }

  function text(el) {
    var copy = el.cloneNode(true);
    copy.querySelectorAll(".req").forEach(function (r) { r.remove(); });
    return copy.textContent.trim();
  }

  function setError(name, message) {
    var el = document.getElementById(name + "-error");
    var input = document.getElementById(name);
    if (el) el.textContent = message ? sentence(name, message) : "";
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

  // The list of problems above the form, as the server renders it without JavaScript.
  function summarize(errors) {
    var old = document.getElementById("g2w-summary");
    if (old) old.remove();
    var names = Object.keys(errors);
    if (!names.length) return null;
    var box = document.createElement("div");
    box.className = "summary"; box.id = "g2w-summary";
    box.setAttribute("role", "alert"); box.setAttribute("tabindex", "-1");
    var p = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = "Please check " + names.length + " field" + (names.length > 1 ? "s" : "") + ":";
    p.appendChild(strong); box.appendChild(p);
    var ul = document.createElement("ul");
    names.forEach(function (name) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "#" + name; a.textContent = sentence(name, errors[name]);
      li.appendChild(a); ul.appendChild(li);
    });
    box.appendChild(ul);
    form.insertBefore(box, form.firstChild);
    return box;
  }

  function show(errors) {
    form.querySelectorAll(".error").forEach(function (p) { p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    Object.keys(errors).forEach(function (name) { setError(name, errors[name]); });
    var box = summarize(errors);
    if (box) box.focus();
  }

  form.querySelectorAll("input, select, textarea").forEach(function (el) {
    var name = el.type === "radio" ? el.name : el.id;
    el.addEventListener("input", function () { touched[name] = true; });
    el.addEventListener("change", function () { touched[name] = true; });
    el.addEventListener("blur", function () {
      // Tabbing through an empty form is not a mistake: judge a field once it was
      // typed into, or once the visitor tried to submit.
      if (!submitted && !touched[name]) return;
      setError(name, check()[name]);
    });
  });

  function result(heading, message, link) {
    var area = document.getElementById("g2w-result");
    area.textContent = "";
    var box = document.createElement("div");
    box.className = "done";
    var h = document.createElement("h2");
    h.textContent = heading; h.setAttribute("tabindex", "-1");
    var p = document.createElement("p");
    p.textContent = message;
    if (link) {
      var a = document.createElement("a");
      a.id = "join-url"; a.href = link; a.textContent = link; a.className = "join";
      p.appendChild(a);
    }
    box.appendChild(h); box.appendChild(p); area.appendChild(box);
    // The button that had focus may be gone: keep the visitor where the answer is.
    h.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitted = true;
    var errors = check();
    if (Object.keys(errors).length) { show(errors); return; }
    summarize({});
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
    fetch(form.getAttribute("data-api") || form.action, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
      .then(function (res) {
        var status = res[0], j = res[1];
        button.disabled = false;
        if (status === 400 && j.fields) { show(j.fields); return; }
        if (j.status === "registered" || j.status === "already_registered") {
          var heading = j.status === "registered" ? "You're registered" : "You were already registered";
          // Only web links: a javascript: URL from a broken upstream must not become one.
          if (/^https?:\/\//i.test(j.joinUrl || "")) {
            result(heading, "Join the webinar with your personal link: ", j.joinUrl);
          } else {
            result(heading, "Your confirmation email has the link to join.");
          }
          form.hidden = true;
        } else if (j.status === "queued" || j.status === "pending_validation") {
          result("Thank you!", "Your registration is being processed; the confirmation email with your link to join will arrive shortly.");
          form.hidden = true;
        } else {
          // Refused (GoTo's reason), or not taken (busy, unavailable): the form stays,
          // so the visitor can correct it or try again.
          var why = j.reason || j.message;
          result("Sorry", why ? "We could not complete your registration: " + why.replace(/\.$/, "") + "." :
            "We could not complete your registration. Please try again.");
        }
      })
      .catch(function () {
        button.disabled = false;
        result("Sorry", "The registration could not be sent. Please check your connection and try again.");
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
