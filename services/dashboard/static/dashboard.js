// Progressive enhancement only: every form and page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // The environment switcher switches as soon as another environment is chosen.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  // Logs: an opt-in refresh every 10 s (remembered for this tab), shown only when scripts run.
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    const box = refresh.querySelector("input");
    refresh.hidden = false;
    box.checked = sessionStorage.getItem("authport-logs-refresh") === "on";
    box.addEventListener("change", () => sessionStorage.setItem("authport-logs-refresh", box.checked ? "on" : "off"));
    setInterval(() => { if (box.checked) window.location.reload(); }, 10000);
  }
});
