// Small progressive enhancements; every page works without them.
"use strict";

document.documentElement.classList.add("js");

// The phone menu: the header's Menu button shows and hides the nav (CSS hides it only once
// this script has run, so without scripts the nav simply stays open).
document.addEventListener("click", (event) => {
  const toggle = event.target.closest(".menu-toggle");
  if (!toggle) {
    return;
  }
  const header = toggle.closest(".top");
  const open = !header.classList.contains("open");
  header.classList.toggle("open", open);
  toggle.setAttribute("aria-expanded", String(open));
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// Live regions: a container with data-refresh="SECONDS" asks for the same URL (so filters and
// page stay) with X-Requested-With: fetch, and the server answers with just its [data-live]
// parts, which replace the ones on the page with the same id. A failed or expired-session
// answer leaves the page as it is and tries again later.
(() => {
  const container = document.querySelector("[data-refresh]");
  if (!container) {
    return;
  }
  const seconds = Math.max(Number(container.dataset.refresh) || 10, 2);
  let busy = false;

  const refresh = async () => {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    try {
      const response = await fetch(window.location.href, {
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (!response.ok || !response.headers.get("X-Pullre-Fragment")) {
        return;
      }
      const fragment = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const fresh of fragment.querySelectorAll("[data-live][id]")) {
        const current = document.getElementById(fresh.id);
        if (current) {
          current.replaceWith(document.adoptNode(fresh));
        }
      }
      document.documentElement.dataset.refreshedAt = String(Date.now());
    } catch (error) {
      // Offline or the server restarting: keep what is shown.
    } finally {
      busy = false;
    }
  };

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      refresh();
    }
  });
})();
