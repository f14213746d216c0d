// The language menu sends its form as soon as a language is chosen (without JavaScript,
// the form's button does).
(function () {
  var select = document.getElementById("language-select");
  if (select) select.addEventListener("change", function () { select.form.submit(); });
})();
