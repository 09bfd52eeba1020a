// The UI works without this file. It asks before irreversible decisions and sends the CSRF token
// with any script request (HTMX-style header), read from the page's own hidden field.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.danger");
  if (button && !window.confirm(`${button.textContent.trim()}? This cannot be undone.`)) event.preventDefault();
});
window.nudgeCsrfHeaders = () => {
  const field = document.querySelector("input[name=csrf_token]");
  return field ? { "X-CSRF-Token": field.value } : {};
};
