// Progressive enhancement only: every form works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // The environment switcher switches as soon as another environment is chosen.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
