// Keyboard shortcuts of the scenario run page: p/f/b choose pass/fail/blocked, n records the
// choice and goes on (or just goes on when nothing was chosen). The form works without this.
"use strict";

(() => {
  const form = document.getElementById("run-form");
  const next = document.getElementById("next-step");
  const buttons = form ? Array.from(form.querySelectorAll("button[data-key]")) : [];
  let chosen = buttons.find((button) => button.classList.contains("chosen")) || null;

  const choose = (button) => {
    buttons.forEach((other) => {
      other.classList.toggle("chosen", other === button);
      other.setAttribute("aria-pressed", String(other === button));
    });
    chosen = button;
  };

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey || target.closest("textarea, input, select")) {
      return; // typing a note, or a browser shortcut
    }
    const key = event.key.toLowerCase();
    const button = buttons.find((candidate) => candidate.dataset.key === key);
    if (button) {
      event.preventDefault();
      choose(button);
    } else if (key === "n") {
      event.preventDefault();
      if (form && chosen) {
        form.requestSubmit(chosen);
      } else if (next) {
        window.location.assign(next.href);
      }
    }
  });
})();
