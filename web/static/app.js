// The UI works without this file and without htmx: every form posts and every link navigates. It asks before
// irreversible decisions and sends the CSRF token with every HTMX request (the X-CSRF-Token header), read from
// the page's own hidden field.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.danger");
  if (button && !window.confirm(`${button.textContent.trim()}? This cannot be undone.`)) event.preventDefault();
});
window.nudgeCsrfHeaders = () => {
  const field = document.querySelector("input[name=csrf_token]");
  return field ? { "X-CSRF-Token": field.value } : {};
};
document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.verb === "get") return;
  Object.assign(event.detail.headers, window.nudgeCsrfHeaders());
});
// An error answer is swapped into #request-error; clear it when the next request succeeds.
document.addEventListener("htmx:afterRequest", (event) => {
  const box = document.getElementById("request-error");
  if (box && event.detail.successful) box.replaceChildren();
});
