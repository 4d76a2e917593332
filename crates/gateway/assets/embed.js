// Puts a g2w registration form into any page:
//   <div data-g2w-webinar="WEBINAR_KEY"></div>
//   <script src="https://g2w.example.com/embed.js" async></script>
// Each such element gets the hosted form in an iframe that sizes itself to its content.
(function () {
  var script = document.currentScript;
  var base = script ? new URL(script.src).origin : "";
  function mount(el) {
    if (el.getAttribute("data-g2w-mounted")) return;
    el.setAttribute("data-g2w-mounted", "1");
    var frame = document.createElement("iframe");
    frame.src = base + "/r/" + encodeURIComponent(el.getAttribute("data-g2w-webinar")) + "?embed=1";
    frame.title = el.getAttribute("data-g2w-title") || "Webinar registration";
    frame.style.cssText = "width:100%;border:0;min-height:32rem";
    el.appendChild(frame);
    window.addEventListener("message", function (e) {
      if (e.origin === base && e.source === frame.contentWindow && e.data && e.data.g2wHeight) {
        frame.style.height = e.data.g2wHeight + "px";
      }
    });
  }
  function run() { document.querySelectorAll("[data-g2w-webinar]").forEach(mount); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run); else run();
})();
