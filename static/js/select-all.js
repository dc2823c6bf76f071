// A header checkbox marked data-select-all="<name>" checks or clears every
// checkbox of that name in its form.
(function () {
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var name = all.getAttribute("data-select-all");
    all.addEventListener("change", function () {
      all.form.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (c) {
        c.checked = all.checked;
      });
    });
  });
})();
