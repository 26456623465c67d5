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

// A form that came back with errors: start from their summary (each error links its input).
(() => {
  const summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
})();

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// Keyboard focus across a part of the page being replaced: where it was (the part's id and
// the place of the focused control among the part's controls), and back there afterwards.
const focusables = (part) =>
  Array.from(part.querySelectorAll("a[href], button, input, select, textarea, summary"));

const whereFocus = (parts) => {
  const element = document.activeElement;
  const part = element && element.closest ? element.closest(parts) : null;
  return part ? { id: part.id, index: focusables(part).indexOf(element) } : null;
};

const restoreFocus = (focus) => {
  if (!focus || (document.activeElement && document.activeElement !== document.body)) {
    return;
  }
  const part = document.getElementById(focus.id);
  const again = part ? focusables(part)[focus.index] : null;
  if (again) {
    again.focus({ preventScroll: true });
  }
};

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
  let summary = (document.getElementById("environments") || container).dataset.summary;

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
      const focus = whereFocus("[data-live][id]");
      for (const fresh of fragment.querySelectorAll("[data-live][id]")) {
        const current = document.getElementById(fresh.id);
        if (current) {
          current.replaceWith(document.adoptNode(fresh));
        }
      }
      restoreFocus(focus);
      const table = document.getElementById("environments");
      const announcer = document.getElementById("dashboard-announce");
      if (table && announcer && table.dataset.summary !== summary) {
        summary = table.dataset.summary;
        announcer.textContent = summary;
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

// The PR page while something is in flight (a deploy, a redeploy, deep smoke checks): every
// few seconds it asks its live.json and replaces the parts whose HTML changed. Keyboard focus,
// open step logs and text being typed are kept; a changed status is announced through the
// polite live region; polling stops once nothing is in flight.
(() => {
  const root = document.querySelector("[data-live-url]");
  if (!root) {
    return;
  }
  const announcer = document.getElementById("pull-announce");
  const seen = new Map();
  let spoken = root.dataset.announce;
  let seconds = 2;

  const typing = (part) => {
    const element = document.activeElement;
    return part.contains(element) && element.matches("input:not([type=hidden]), textarea, select");
  };

  const apply = (parts) => {
    const focus = whereFocus("[data-live-part]");
    for (const [id, html] of Object.entries(parts)) {
      const current = document.getElementById(id);
      if (!current || seen.get(id) === html || typing(current)) {
        continue; // unchanged, gone, or someone is typing in it: left for a later answer
      }
      const template = document.createElement("template");
      template.innerHTML = html;
      const fresh = template.content.getElementById(id);
      if (!fresh) {
        continue;
      }
      for (const details of current.querySelectorAll("details[open][data-step]")) {
        const again = fresh.querySelector(`details[data-step="${details.dataset.step}"]`);
        if (again) {
          again.open = true;
        }
      }
      current.replaceWith(fresh);
      seen.set(id, html);
    }
    restoreFocus(focus);
  };

  const poll = async () => {
    let again = true;
    try {
      if (!document.hidden) {
        const response = await fetch(root.dataset.liveUrl, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
        });
        const type = response.headers.get("Content-Type") || "";
        if (response.ok && type.startsWith("application/json")) {
          const live = await response.json();
          apply(live.parts);
          if (live.announce !== spoken && announcer) {
            announcer.textContent = live.announce;
          }
          spoken = live.announce;
          seconds = Math.max(Number(live.poll_seconds) || 2, 1);
          again = live.in_flight;
          root.dataset.inFlight = String(live.in_flight);
          document.documentElement.dataset.liveAt = String(Date.now());
        }
      }
    } catch (error) {
      // Offline or the server restarting: keep what is shown and ask again later.
    }
    if (again) {
      window.setTimeout(poll, seconds * 1000);
    }
  };

  if (root.dataset.inFlight === "true") {
    window.setTimeout(poll, seconds * 1000);
  }
})();
