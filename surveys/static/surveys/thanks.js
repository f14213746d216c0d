// After a submission: forget the answers this browser kept for the link.
(function () {
  var box = document.getElementById("thanks");
  if (!box) return;
  try { localStorage.removeItem("tanys:" + box.dataset.token); } catch (e) {}
})();
