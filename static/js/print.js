// A print button for pages whose product is paper. Without this script the
// button stays hidden and the browser's own print command does the same.
for (const button of document.querySelectorAll("[data-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
