// Reloads the live view's JPEG a few times a second; the server only ever has redacted frames.
(function () {
  var image = document.getElementById("live");
  var interval = parseInt(image.dataset.interval, 10) || 500;
  var count = 0;
  setInterval(function () {
    count += 1;
    image.src = "/live.jpg?n=" + count;
  }, interval);
})();
